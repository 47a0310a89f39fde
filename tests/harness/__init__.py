"""Test harness: a real kube-apiserver + etcd (tests/apiserver) and kstatus (tests/kstatus),
both built from Go modules and cached. See apiserver.py, kstatus.py, gobuild.py, build.py."""

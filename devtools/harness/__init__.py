"""Test harness: a real kube-apiserver + etcd, kstatus, the other Go tools (their Go modules in
devtools/go/), the single-node cluster, its images and the OpenSearch node, all built and cached by
input hash. See apiserver.py, kstatus.py, gobuild.py, build.py, node.py, images.py, opensearch.py."""

"""Configuration files of the single-node cluster's components (what this machine needs, see
../shared/notes-real-node.md): containerd's CRI config, the CNI conflist, kubelet's and
kube-proxy's configuration files. Pure functions of paths, addresses and ports."""

from __future__ import annotations

import json
from pathlib import Path

from .node_host import BRIDGE, NODE_IP, POD_SUBNET

CNI_BIN_DIR = "/usr/lib/cni"  # Debian's containernetworking-plugins
SERVICE_CIDR = "10.0.0.0/24"   # the API server harness's --service-cluster-ip-range


def containerd_toml(run: Path, sock: Path, pause_image: str) -> str:
    # restrict_oom_score_adj: root here lacks CAP_SYS_RESOURCE; without it every sandbox fails
    # with "runc create failed ... can't get final child's PID from pipe: EOF".
    return f"""version = 2
root = "{run}/containerd/root"
state = "{run}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_image}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{run}/cni/net.d"
    max_conf_num = 1
"""


def cni_conflist(run: Path) -> str:
    gateway = POD_SUBNET.rsplit(".", 1)[0] + ".1"
    return json.dumps({
        "cniVersion": "1.0.0",
        "name": "rollup-node",
        "plugins": [
            {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False, "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_SUBNET, "gateway": gateway}]],
                      "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(run / "cni" / "ipam")}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }, indent=2)


def kubelet_yaml(run: Path, sock: Path, port: int, healthz_port: int) -> str:
    # Anonymous + AlwaysAllow: the harness API server has no kubelet client certificate; kubelet
    # listens on the node's lo address only, and guard_ports drops outside traffic to it.
    return json.dumps({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{sock}",
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "staticPodPath": "",
        "tlsCertFile": "", "tlsPrivateKeyFile": "",
        "serializeImagePulls": False,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                         "nodefs.inodesFree": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "resolvConf": str(run / "resolv.conf"),
        "volumeStatsAggPeriod": "0s",
        "nodeStatusReportFrequency": "10s",
        "localStorageCapacityIsolation": True,
    }, indent=2)


def kube_proxy_yaml(kubeconfig: str, node_name: str, healthz_port: int, metrics_port: int) -> str:
    return json.dumps({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": kubeconfig},
        "hostnameOverride": node_name,
        "bindAddress": "127.0.0.1",
        "healthzBindAddress": f"127.0.0.1:{healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        "clusterCIDR": POD_SUBNET,
        "nodePortAddresses": [f"{NODE_IP}/32"],
        "conntrack": {"maxPerCore": 0, "min": 0},
    }, indent=2)

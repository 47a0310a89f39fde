#!/usr/bin/env bash
# End-to-end suite on a throw-away kind cluster: the operator image built from this tree, a real
# single-node Elasticsearch 8.x with security on, and the operator's manifests as users install them.
#
#   bash tests/e2e/run.sh            # or: make e2e
#
# Needs: docker (a running engine), kind, kubectl, python3; no curl on the host (all Elasticsearch calls
# are made with curl inside the Elasticsearch pod).
#
# What it does (see tests/e2e/README.md for the why):
#   1. kind create cluster (own kubeconfig under .cache/e2e/, your ~/.kube/config is not touched)
#   2. docker build the operator image, kind load it; docker pull + kind load Elasticsearch
#   3. Elasticsearch as a Deployment/Service in namespace es-e2e (tests/e2e/elasticsearch.yaml)
#   4. as the elastic superuser: a role with the cluster privilege manage_rollup and a user with it,
#      an index whose mapping has _meta._rollup (8.15+ creates rollup jobs only in clusters that
#      already use rollups), a source index with documents, a rollup job sensor-hourly, started
#   5. kubectl apply -k tests/e2e/overlay (= manifests/ with the image swapped for the local build)
#   6. Secret + ElasticsearchConnection + two RollupJobs (tests/e2e/rollupjobs.yaml)
#   7. asserts: both jobs Ready; patching sensor-hourly to desiredState stopped stops it on the
#      server (status.jobState stopped, Ready=True for the new generation, events StopRequested
#      and Stopped); deleting sensor-managed (deletionPolicy Delete) deletes the job on the server;
#      deleting sensor-hourly (Retain) leaves it there
#   8. deletes the cluster (unless KEEP_CLUSTER=1; it is kept on failure too when KEEP_CLUSTER=1)
#
# Environment:
#   CLUSTER_NAME      kind cluster name (default rollup-e2e); an existing cluster of that name is
#                     reused only with REUSE_CLUSTER=1 (and then never deleted by this script)
#   KEEP_CLUSTER=1    keep the cluster at the end (kubeconfig path is printed)
#   KIND_NODE_IMAGE   kindest/node image for `kind create cluster --image` (default: kind's own)
#   ES_VERSION        Elasticsearch version (default 8.17.4)
#   ES_PRELOAD=0      let the kind node pull Elasticsearch itself instead of docker pull + kind load
#   ELASTIC_PASSWORD  password of the elastic superuser (default: generated)
#   E2E_ES_CLUSTER_PRIVILEGES  comma-separated cluster privileges of the operator's role
#                     (default manage_rollup, the documented requirement)
#   SKIP_BUILD=1      do not docker build; use an existing local image rollup-operator:e2e
#   E2E_TIMEOUT       seconds to wait for each asserted state (default 180)
#   E2E_WORK_DIR      where the cluster's kubeconfig is written (default .cache/e2e)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "${HERE}/../.." && pwd)"

# Must equal newName:newTag in tests/e2e/overlay/kustomization.yaml (checked by test_e2e_static.py).
IMAGE="rollup-operator:e2e"

CLUSTER_NAME="${CLUSTER_NAME:-rollup-e2e}"
KEEP_CLUSTER="${KEEP_CLUSTER:-0}"
REUSE_CLUSTER="${REUSE_CLUSTER:-0}"
KIND_NODE_IMAGE="${KIND_NODE_IMAGE:-}"
ES_VERSION="${ES_VERSION:-8.17.4}"
ES_IMAGE="docker.elastic.co/elasticsearch/elasticsearch:${ES_VERSION}"
ES_PRELOAD="${ES_PRELOAD:-1}"
ELASTIC_PASSWORD="${ELASTIC_PASSWORD:-elastic-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')}"
OPERATOR_ES_USER="rollup-operator-e2e"
OPERATOR_ES_PASSWORD="operator-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
E2E_ES_CLUSTER_PRIVILEGES="${E2E_ES_CLUSTER_PRIVILEGES:-manage_rollup}"
SKIP_BUILD="${SKIP_BUILD:-0}"
E2E_TIMEOUT="${E2E_TIMEOUT:-180}"

ES_NS="es-e2e"
NS="rollup-e2e"
OP_NS="rollup-operator-system"
WORK_DIR="${E2E_WORK_DIR:-${ROOT}/.cache/e2e}"
export KUBECONFIG="${WORK_DIR}/kubeconfig-${CLUSTER_NAME}"

CREATED_CLUSTER=0
STEP="start"

log() { printf '\n\033[1m== [%s] %s\033[0m\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { printf '\nE2E FAILED (%s): %s\n' "${STEP}" "$*" >&2; exit 1; }
step() { STEP="$1"; log "$1"; }

require() {
  local tool
  for tool in "$@"; do
    command -v "${tool}" >/dev/null 2>&1 || fail "${tool} is not installed"
  done
}

diagnostics() {
  log "diagnostics"
  kubectl get nodes -o wide || true
  kubectl get pods -A -o wide || true
  kubectl -n "${NS}" get rollupjobs,elasticsearchconnections -o yaml || true
  kubectl -n "${NS}" get events --sort-by=.lastTimestamp || true
  kubectl -n "${OP_NS}" describe deploy/rollup-operator || true
  kubectl -n "${OP_NS}" logs deploy/rollup-operator --tail=300 || true
  kubectl -n "${ES_NS}" logs deploy/elasticsearch --tail=50 || true
}

cleanup() {
  local rc=$?
  trap - EXIT
  if [[ ${rc} -ne 0 && -f "${KUBECONFIG}" ]]; then
    diagnostics
  fi
  if [[ ${CREATED_CLUSTER} -eq 1 ]]; then
    if [[ "${KEEP_CLUSTER}" == "1" ]]; then
      log "keeping kind cluster ${CLUSTER_NAME}: export KUBECONFIG=${KUBECONFIG}"
    else
      log "deleting kind cluster ${CLUSTER_NAME}"
      kind delete cluster --name "${CLUSTER_NAME}" || true
      rm -f "${KUBECONFIG}"
    fi
  fi
  if [[ ${rc} -eq 0 ]]; then
    log "E2E PASSED"
  fi
  exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# es METHOD PATH [BODY]: an Elasticsearch call as the elastic superuser, made with curl inside the
# Elasticsearch pod (the password stays in the pod's environment). Prints the answer's body;
# fails on HTTP >= 400.
es() {
  local method="$1" path="$2" body="${3:-}" out code
  # shellcheck disable=SC2016  # ${ELASTIC_PASSWORD} and "$@" are expanded by sh inside the pod
  out="$(printf '%s' "${body}" | kubectl -n "${ES_NS}" exec -i deploy/elasticsearch -c elasticsearch -- \
    sh -c 'exec curl -sS -u "elastic:${ELASTIC_PASSWORD}" -H "Content-Type: application/json" -w "\n%{http_code}" "$@"' \
    es-curl -X "${method}" "http://localhost:9200${path}" --data-binary @-)" || return 1
  code="${out##*$'\n'}"
  out="${out%$'\n'*}"
  printf '%s\n' "${out}"
  if [[ ! "${code}" =~ ^[0-9]+$ ]] || (( code >= 400 )); then
    printf 'Elasticsearch %s %s -> HTTP %s: %s\n' "${method}" "${path}" "${code}" "${out}" >&2
    return 1
  fi
}

# json EXPR: evaluate a Python expression over the JSON document on stdin (bound to d); prints it.
json() {
  python3 -c 'import json, sys; d = json.load(sys.stdin); v = eval(sys.argv[1]); print(v if isinstance(v, str) else json.dumps(v))' "$1"
}

# until_true DESCRIPTION COMMAND...: retry COMMAND every 2s until it succeeds or E2E_TIMEOUT passes.
until_true() {
  local what="$1" deadline
  shift
  deadline=$(( SECONDS + E2E_TIMEOUT ))
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS >= deadline )); then
      fail "timed out after ${E2E_TIMEOUT}s waiting for ${what}"
    fi
    sleep 2
  done
}

jsonpath() {  # jsonpath KIND/NAME EXPR (in namespace NS)
  kubectl -n "${NS}" get "$1" -o "jsonpath=$2"
}

generation_observed() {  # the operator has written status for the current spec
  local gen observed
  gen="$(jsonpath "$1" '{.metadata.generation}')"
  observed="$(jsonpath "$1" '{.status.observedGeneration}')"
  [[ -n "${gen}" && "${gen}" == "${observed}" ]]
}

# wait_ready KIND/NAME: status describes the current generation, then kubectl wait for Ready.
wait_ready() {
  until_true "$1 to observe its generation" generation_observed "$1"
  kubectl -n "${NS}" wait --for=condition=Ready "$1" --timeout="${E2E_TIMEOUT}s" \
    || fail "$1 did not become Ready: $(jsonpath "$1" '{.status.conditions}')"
}

server_job_state() {  # server_job_state ID -> job_state as GET _rollup/job/ID reports it
  es GET "/_rollup/job/$1" | json 'd["jobs"][0]["status"]["job_state"] if d["jobs"] else "absent"'
}

server_job_is() {  # server_job_is ID STATE...
  local id="$1" state
  shift
  state="$(server_job_state "${id}")"
  local want
  for want in "$@"; do
    [[ "${state}" == "${want}" ]] && return 0
  done
  return 1
}

event_reasons() {  # event_reasons NAME -> reasons of the Events about RollupJob NAME, one a line
  kubectl -n "${NS}" get events \
    --field-selector "involvedObject.kind=RollupJob,involvedObject.name=$1" \
    -o 'jsonpath={range .items[*]}{.reason}{"\n"}{end}'
}

has_events() {  # has_events NAME REASON...
  local reasons want
  reasons="$(event_reasons "$1")"
  shift
  for want in "$@"; do
    grep -qx "${want}" <<<"${reasons}" || return 1
  done
}

# ---------------------------------------------------------------------------------------------

step "preflight"
require docker kind kubectl python3 od
docker info >/dev/null 2>&1 || fail "docker info failed: no running Docker engine"
mkdir -p "${WORK_DIR}"

step "kind cluster ${CLUSTER_NAME}"
if kind get clusters 2>/dev/null | grep -qx "${CLUSTER_NAME}"; then
  [[ "${REUSE_CLUSTER}" == "1" ]] \
    || fail "a kind cluster named ${CLUSTER_NAME} exists; delete it, set CLUSTER_NAME, or set REUSE_CLUSTER=1"
  kind export kubeconfig --name "${CLUSTER_NAME}" --kubeconfig "${KUBECONFIG}"
else
  create_args=(create cluster --name "${CLUSTER_NAME}" --kubeconfig "${KUBECONFIG}" --wait 180s)
  if [[ -n "${KIND_NODE_IMAGE}" ]]; then
    create_args+=(--image "${KIND_NODE_IMAGE}")
  fi
  CREATED_CLUSTER=1
  kind "${create_args[@]}"
fi
kubectl version
kubectl wait --for=condition=Ready node --all --timeout=180s

step "operator image ${IMAGE}"
if [[ "${SKIP_BUILD}" != "1" ]]; then
  docker build -t "${IMAGE}" \
    --build-arg "REVISION=$(git -C "${ROOT}" rev-parse HEAD 2>/dev/null || echo unknown)" \
    --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    "${ROOT}"
fi
docker image inspect "${IMAGE}" >/dev/null || fail "image ${IMAGE} not found"
[[ "$(docker image inspect -f '{{.Config.User}}' "${IMAGE}")" == "65532:65532" ]] \
  || fail "image ${IMAGE} does not run as 65532:65532"
kind load docker-image "${IMAGE}" --name "${CLUSTER_NAME}"

step "Elasticsearch ${ES_VERSION}"
if [[ "${ES_PRELOAD}" == "1" ]]; then
  docker image inspect "${ES_IMAGE}" >/dev/null 2>&1 || docker pull "${ES_IMAGE}"
  kind load docker-image "${ES_IMAGE}" --name "${CLUSTER_NAME}"
fi
kubectl create namespace "${ES_NS}" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "${ES_NS}" create secret generic elastic-credentials \
  --from-literal=password="${ELASTIC_PASSWORD}" --dry-run=client -o yaml | kubectl apply -f -
sed "s#image: docker.elastic.co/elasticsearch/elasticsearch:.*#image: ${ES_IMAGE}#" "${HERE}/elasticsearch.yaml" \
  | kubectl apply -f -
kubectl -n "${ES_NS}" rollout status deploy/elasticsearch --timeout=600s
until_true "Elasticsearch to answer" es GET "/_cluster/health?wait_for_status=yellow&timeout=5s"
es GET / | json 'd["version"]["number"]'

step "Elasticsearch user for the operator (cluster privileges: ${E2E_ES_CLUSTER_PRIVILEGES})"
privileges_json="$(python3 -c 'import json, sys; print(json.dumps([p.strip() for p in sys.argv[1].split(",") if p.strip()]))' "${E2E_ES_CLUSTER_PRIVILEGES}")"
es PUT /_security/role/rollup_operator_e2e "{\"cluster\": ${privileges_json}}"
es PUT "/_security/user/${OPERATOR_ES_USER}" \
  "{\"password\": \"${OPERATOR_ES_PASSWORD}\", \"roles\": [\"rollup_operator_e2e\"], \"full_name\": \"rollup-operator e2e\"}"

step "rollup usage seed, source data and the pre-existing job sensor-hourly"
# Elasticsearch 8.15+ refuses new rollup jobs in a cluster without rollup usage: no rollup job and
# no index whose mapping has _meta._rollup. This empty index is such usage.
es PUT /rollup-usage-seed '{"mappings": {"_meta": {"_rollup": {}}}}'
es PUT /sensor-data-2024 '{"mappings": {"properties": {"@timestamp": {"type": "date"}, "host": {"type": "keyword"}, "temperature": {"type": "float"}}}}'
for i in 1 2 3 4 5 6; do
  es POST /sensor-data-2024/_doc \
    "{\"@timestamp\": \"2024-01-01T0${i}:00:00Z\", \"host\": \"node-$(( i % 2 ))\", \"temperature\": $(( 20 + i )).5}" >/dev/null
done
es POST /sensor-data-2024/_refresh >/dev/null
es PUT /_rollup/job/sensor-hourly '{
  "index_pattern": "sensor-data-*",
  "rollup_index": "sensor-rollup",
  "cron": "*/5 * * * * ?",
  "page_size": 100,
  "groups": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1h"}, "terms": {"fields": ["host"]}},
  "metrics": [{"field": "temperature", "metrics": ["min", "max", "avg"]}]
}'
es POST /_rollup/job/sensor-hourly/_start
until_true "sensor-hourly to be started on the server" server_job_is sensor-hourly started indexing

step "install the operator (kubectl apply -k tests/e2e/overlay = manifests/ + local image)"
kubectl apply -k "${HERE}/overlay"
kubectl wait --for=condition=Established \
  crd/rollupjobs.rollup.esops.dev crd/elasticsearchconnections.rollup.esops.dev --timeout=60s
[[ "$(kubectl -n "${OP_NS}" get deploy/rollup-operator -o 'jsonpath={.spec.template.spec.containers[0].image}')" == "${IMAGE}" ]] \
  || fail "the overlay did not put ${IMAGE} into the Deployment"
kubectl -n "${OP_NS}" rollout status deploy/rollup-operator --timeout=300s

step "Secret, ElasticsearchConnection and RollupJobs in ${NS}"
kubectl create namespace "${NS}" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "${NS}" create secret generic es-rollup-credentials --type=kubernetes.io/basic-auth \
  --from-literal=username="${OPERATOR_ES_USER}" --from-literal=password="${OPERATOR_ES_PASSWORD}" \
  --dry-run=client -o yaml | kubectl apply -f -
# The operator uses only Secrets that opt in (README "Multi-tenancy").
kubectl -n "${NS}" label secret es-rollup-credentials rollup.esops.dev/credentials=true --overwrite
kubectl apply -f "${HERE}/rollupjobs.yaml"

step "assert: the connection is Ready"
until_true "elasticsearchconnection/e2e-es to observe its generation" generation_observed elasticsearchconnection/e2e-es
if ! kubectl -n "${NS}" wait --for=condition=Ready elasticsearchconnection/e2e-es --timeout="${E2E_TIMEOUT}s"; then
  fail "the connection is not Ready: $(jsonpath elasticsearchconnection/e2e-es '{.status.conditions}')
  The operator's user has the cluster privileges [${E2E_ES_CLUSTER_PRIVILEGES}]. If the message names
  cluster:monitor/main: the operator's GET / needs the monitor privilege too (known issue, see
  tests/e2e/README.md); E2E_ES_CLUSTER_PRIVILEGES=manage_rollup,monitor works around it."
fi

step "assert: sensor-hourly (existing job, desiredState started) is Ready"
wait_ready rollupjob/sensor-hourly
state="$(jsonpath rollupjob/sensor-hourly '{.status.jobState}')"
[[ "${state}" == "started" || "${state}" == "indexing" ]] || fail "sensor-hourly: status.jobState is ${state}"

step "assert: sensor-managed (spec.config, deletionPolicy Delete) is created and Ready"
wait_ready rollupjob/sensor-managed
until_true "sensor-managed to run on the server" server_job_is sensor-managed started indexing
[[ "$(jsonpath rollupjob/sensor-managed '{.status.managed}')" == "true" ]] || fail "sensor-managed: status.managed is not true"
kubectl -n "${NS}" get rollupjob/sensor-managed -o 'jsonpath={.metadata.finalizers}' | grep -q 'rollup.esops.dev/cleanup' \
  || fail "sensor-managed has no cleanup finalizer"

step "assert: desiredState stopped stops sensor-hourly"
kubectl -n "${NS}" patch rollupjob/sensor-hourly --type=merge -p '{"spec": {"desiredState": "stopped"}}'
kubectl -n "${NS}" wait --for=jsonpath='{.status.jobState}'=stopped rollupjob/sensor-hourly --timeout="${E2E_TIMEOUT}s" \
  || fail "sensor-hourly: status.jobState is $(jsonpath rollupjob/sensor-hourly '{.status.jobState}')"
wait_ready rollupjob/sensor-hourly
[[ "$(jsonpath rollupjob/sensor-hourly '{.status.jobState}')" == "stopped" ]] || fail "sensor-hourly: not stopped once Ready"
[[ "$(server_job_state sensor-hourly)" == "stopped" ]] || fail "sensor-hourly is $(server_job_state sensor-hourly) on the server"
until_true "events StopRequested and Stopped on rollupjob/sensor-hourly" has_events sensor-hourly StopRequested Stopped
kubectl -n "${NS}" get events --field-selector involvedObject.name=sensor-hourly

step "assert: deleting sensor-managed (deletionPolicy Delete) deletes the job on the server"
kubectl -n "${NS}" delete rollupjob/sensor-managed --wait=true --timeout="${E2E_TIMEOUT}s"
until_true "GET _rollup/job/sensor-managed to answer jobs: []" server_job_is sensor-managed absent
answer="$(es GET /_rollup/job/sensor-managed)"
printf '%s\n' "${answer}"
[[ "$(json 'd["jobs"]' <<<"${answer}")" == "[]" ]] || fail "sensor-managed still exists on the server: ${answer}"

step "assert: deleting sensor-hourly (deletionPolicy Retain) leaves the job on the server"
kubectl -n "${NS}" delete rollupjob/sensor-hourly --wait=true --timeout="${E2E_TIMEOUT}s"
[[ "$(server_job_state sensor-hourly)" == "stopped" ]] || fail "sensor-hourly is gone from the server after a Retain delete"

step "done"

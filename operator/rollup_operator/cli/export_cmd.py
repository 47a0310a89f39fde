"""``rollup-operator export``: the jobs on a server as manifests for ``kubectl apply -f -``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rollup_operator.cli import export
from rollup_operator.cli.es_target import EXIT_EXPORT, CommandError, add_command, client, read_jobs, target_from_args


def register(sub: Any) -> None:
    p = add_command(
        sub, "export",
        help="print the server's rollup jobs as RollupJob manifests (kubectl apply -f - adopts them untouched)",
        description=(
            "Read GET _rollup/job/_all once and print an ElasticsearchConnection (with --url; no credentials, a "
            "commented Secret stub) and one RollupJob per job: spec.jobId, spec.config exactly as the operator "
            "compares it, desiredState from the job's state, deletionPolicy Retain. Applying them changes nothing on "
            "Elasticsearch. Credentials come only from environment variables or the connection's Secret."
        ),
        job_help="export only this job (repeat for several)",
        outputs=("yaml", "json"), output_help="yaml: multi-document YAML; json: a v1 List (default: yaml)",
    )
    p.add_argument("--skip-unrepresentable", action="store_true",
                   help="leave out the jobs that cannot be RollupJobs (each is still named, with why, on stderr) and exit 0")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    t = target_from_args(args)
    jobs = read_jobs(client(t), t)
    conn = export.ConnectionInfo(name=t.connection, url=None if t.from_connection else t.url, auth=t.auth,
                                 ca=bool(t.ca_file), insecure_skip_verify=t.insecure)
    try:
        docs, errors = export.export_documents(jobs, connection=conn, namespace=t.namespace, only=args.job or None)
    except export.ExportError as e:
        raise CommandError(str(e), EXIT_EXPORT) from None
    if errors and getattr(args, "skip_unrepresentable", False):
        print("rollup-operator export: left out (--skip-unrepresentable):\n  " + "\n  ".join(errors), file=sys.stderr)
    elif errors:  # all or nothing: a partial export applied by a script would silently drop jobs
        raise CommandError("cannot export faithfully:\n  " + "\n  ".join(errors), EXIT_EXPORT)
    out = export.render_json(docs) if args.output == "json" else export.render_yaml(docs)
    if not any(d.body["kind"] == "RollupJob" for d in docs):
        print("rollup-operator export: the server has no rollup jobs", file=sys.stderr)
    sys.stdout.write(out)
    return 0

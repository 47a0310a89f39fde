"""The small slice of index management that rollups need.

Indices with their mappings (``properties``, ``_meta``, ``dynamic_templates``) and settings,
legacy index templates (``PUT _template/<name>``, applied by ``order`` on index creation), index
pattern resolution (comma lists and ``*`` wildcards, as the field-capabilities API resolves a
rollup job's ``index_pattern``), and field capabilities computed from mappings.
"""

from __future__ import annotations

import copy
import fnmatch
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .errors import ESError, ES


def _uuid() -> str:
    return uuid.uuid4().hex[:22]


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _flatten_settings(settings: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in settings.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten_settings(v, key + "."))
        else:
            out[key] = str(v).lower() if isinstance(v, bool) else str(v)
    return out


def _nest(flat: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in flat.items():
        node = out
        parts = k.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = v
    return out


@dataclass
class Index:
    name: str
    mappings: dict[str, Any]
    settings: dict[str, str]  # flat "index.x" -> str
    aliases: dict[str, Any] = field(default_factory=dict)
    uuid: str = field(default_factory=_uuid)
    creation_date: int = field(default_factory=lambda: int(time.time() * 1000))

    @property
    def rollup_meta(self) -> dict[str, Any] | None:
        meta = self.mappings.get("_meta")
        if isinstance(meta, dict) and isinstance(meta.get("_rollup"), dict):
            return meta["_rollup"]
        return None

    def settings_body(self, version_id: str) -> dict[str, Any]:
        flat = {
            "index.routing.allocation.include._tier_preference": "data_content",
            "index.number_of_shards": "1",
            "index.number_of_replicas": "1",
            **self.settings,
            "index.provided_name": self.name,
            "index.creation_date": str(self.creation_date),
            "index.uuid": self.uuid,
            "index.version.created": version_id,
        }
        return _nest(flat)

    def field_types(self) -> dict[str, tuple[str, bool]]:
        """path -> (type, aggregatable) for every mapped leaf field and multi-field."""
        out: dict[str, tuple[str, bool]] = {}

        def walk(props: dict[str, Any], prefix: str) -> None:
            for name, spec in props.items():
                if not isinstance(spec, dict):
                    continue
                path = prefix + name
                ftype = spec.get("type", "object" if "properties" in spec else "object")
                if "properties" in spec:
                    walk(spec["properties"], path + ".")
                if ftype not in ("object", "nested"):
                    agg = spec.get("doc_values", True) is not False
                    if ftype == "text":
                        agg = bool(spec.get("fielddata", False))
                    out[path] = (ftype, agg)
                for sub, subspec in (spec.get("fields") or {}).items():
                    if isinstance(subspec, dict):
                        st = subspec.get("type", "object")
                        sagg = subspec.get("doc_values", True) is not False if st != "text" else bool(subspec.get("fielddata", False))
                        out[f"{path}.{sub}"] = (st, sagg)

        walk(self.mappings.get("properties") or {}, "")
        return out


@dataclass
class Template:
    name: str
    index_patterns: list[str]
    order: int
    mappings: dict[str, Any]
    settings: dict[str, Any]
    aliases: dict[str, Any]


_INVALID_CHARS = set('\\/*?"<>| ,#:')


def index_name_error(name: str) -> ESError | None:
    def err(msg: str) -> ESError:
        return ESError("invalid_index_name_exception", f"Invalid index name [{name}], {msg}", 400, ES,
                       metadata={"index_uuid": "_na_", "index": name})
    if name != name.lower():
        return err("must be lowercase")
    if name.startswith(("_", "-", "+")):
        return err("must not start with '_', '-', or '+'")
    bad = [c for c in name if c in _INVALID_CHARS]
    if bad:
        return err('must not contain the following characters [\' \',\'"\',\'*\',\',\',\'/\',\'<\',\'>\',\'?\',\'\\\\\',\'|\']')
    if name in (".", ".."):
        return err("must not be '.' or '..'")
    return None


def index_not_found(name: str) -> ESError:
    return ESError("index_not_found_exception", f"no such index [{name}]", 404, ES, metadata={
        "resource.type": "index_or_alias", "resource.id": name, "index_uuid": "_na_", "index": name})


class IndexStore:
    def __init__(self) -> None:
        self.indices: dict[str, Index] = {}
        self.templates: dict[str, Template] = {}
        self.composable: dict[str, dict[str, Any]] = {}  # composable index templates (datastreams.py)
        self.data_streams: dict[str, Any] = {}  # name -> datastreams.DataStream
        self.documents: dict[str, list[dict[str, Any]]] = {}  # index -> sources (tsdocs.py)
        self.ilm_policies: dict[str, dict[str, Any]] = {}  # name -> {"policy", "version", "modified_date"} (ilm.py)
        self.rolled_over_ms: dict[str, int] = {}  # backing index -> when it stopped being the write index
        self.rollup_checkpoints: dict[str, int] = {}  # job id -> end of the last bucket rolled up (rollup_data.py)

    # -- resolution -------------------------------------------------------------------------
    def resolve(self, pattern: str) -> list[str]:
        """Expand an index expression (comma list, wildcards, ``-`` exclusions), leniently."""
        selected: list[str] = []
        for part in [p.strip() for p in pattern.split(",") if p.strip()]:
            if part.startswith("-") and selected:
                selected = [n for n in selected if not fnmatch.fnmatchcase(n, part[1:])]
                continue
            if part in ("_all", "*"):
                matches = [n for n in self.indices if not n.startswith(".")]
            elif "*" in part or "?" in part:
                matches = [n for n in self.indices if fnmatch.fnmatchcase(n, part)
                           and (not n.startswith(".") or part.startswith("."))]
            else:
                matches = [part] if part in self.indices else []
            for ds in sorted(self.data_streams):  # a data stream stands for its backing indices
                if ds == part or part in ("_all", "*") or ("*" in part or "?" in part) and fnmatch.fnmatchcase(ds, part):
                    matches += self.data_streams[ds].indices
            for n in sorted(matches):
                if n not in selected:
                    selected.append(n)
        return selected

    def field_caps(self, pattern: str, fields: list[str]) -> dict[str, dict[str, bool]]:
        caps: dict[str, dict[str, bool]] = {}
        for name in self.resolve(pattern):
            types = self.indices[name].field_types()
            for f in fields:
                if f in types:
                    t, agg = types[f]
                    entry = caps.setdefault(f, {})
                    entry[t] = entry.get(t, True) and agg
        return caps

    def has_rollup_usage(self) -> bool:
        return any(ix.rollup_meta is not None for ix in self.indices.values())

    # -- mutation ---------------------------------------------------------------------------
    def matching_templates(self, name: str) -> list[Template]:
        found = [t for t in self.templates.values()
                 if any(fnmatch.fnmatchcase(name, p) for p in t.index_patterns)]
        return sorted(found, key=lambda t: (t.order, t.name))

    def create(self, name: str, mappings: dict[str, Any] | None = None,
               settings: dict[str, Any] | None = None, aliases: dict[str, Any] | None = None,
               ) -> tuple[Index, list[str]]:
        """Create an index, applying legacy templates; returns (index, warnings)."""
        err = index_name_error(name)
        if err:
            raise err
        if name in self.indices:
            ix = self.indices[name]
            raise ESError("resource_already_exists_exception", f"index [{name}/{ix.uuid}] already exists", 400, ES,
                          metadata={"index_uuid": ix.uuid, "index": name})
        merged_m: dict[str, Any] = {}
        merged_s: dict[str, Any] = {}
        merged_a: dict[str, Any] = {}
        templates = self.matching_templates(name)
        warnings = []
        if len(templates) > 1:
            names = ", ".join(sorted(t.name for t in templates))
            warnings.append(f"index [{name}] matches multiple legacy templates [{names}], "
                            "composable templates will only match a single template")
        for t in templates:
            merged_m = deep_merge(merged_m, t.mappings)
            merged_s = deep_merge(merged_s, t.settings)
            merged_a = deep_merge(merged_a, t.aliases)
        mappings = mappings or {}
        if "_doc" in mappings and isinstance(mappings["_doc"], dict) and len(mappings) == 1:
            mappings = mappings["_doc"]
        merged_m = deep_merge(merged_m, mappings)
        merged_s = deep_merge(merged_s, settings or {})
        merged_a = deep_merge(merged_a, aliases or {})
        flat = _flatten_settings(merged_s)
        flat = {(k if k.startswith("index.") else f"index.{k}"): v for k, v in flat.items()}
        ix = Index(name, merged_m, flat, merged_a)
        self.indices[name] = ix
        return ix, warnings

    def delete(self, expression: str) -> list[str]:
        names = []
        for part in expression.split(","):
            if "*" in part or part in ("_all",):
                names += self.resolve(part)
            elif part in self.indices:
                names.append(part)
            else:
                raise index_not_found(part)
        for n in names:
            self.indices.pop(n, None)
            self.documents.pop(n, None)
        return names

    def put_template(self, name: str, body: dict[str, Any]) -> None:
        patterns = body.get("index_patterns") or body.get("template") or []
        if isinstance(patterns, str):
            patterns = [patterns]
        self.templates[name] = Template(
            name, list(patterns), int(body.get("order", 0) or 0), body.get("mappings") or {},
            body.get("settings") or {}, body.get("aliases") or {})


def version_id(number: str) -> str:
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", number)
    assert m
    major, minor, patch = (int(x) for x in m.groups())
    return str(major * 1000000 + minor * 10000 + patch * 100 + 99)

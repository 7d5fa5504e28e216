#!/usr/bin/env python3
"""Writes the schemas of schemas/ into template.yaml as AWS::EventSchemas::Schema resources.

    scripts/template-schemas.py          rewrite the generated block of template.yaml
    scripts/template-schemas.py --check  exit 1 when the block is stale

The EventBridge schema registry reads JSON Schema draft 4; the files are draft 2020-12. The
conversion only renames what draft 4 spells differently ($defs -> definitions and their $refs,
$id -> id, const -> a one-value enum) and keeps everything else. tests/deploy.rs checks the
template against the files with the same rules.
"""
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
BEGIN = "  # BEGIN GENERATED SCHEMAS: scripts/template-schemas.py writes this block from schemas/\n"
END = "  # END GENERATED SCHEMAS\n"


def draft4(value):
    if isinstance(value, list):
        return [draft4(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, v in value.items():
        if key == "$schema":
            out[key] = "http://json-schema.org/draft-04/schema#"
        elif key == "$id":
            out["id"] = v
        elif key == "$defs":
            out["definitions"] = {k: draft4(d) for k, d in v.items()}
        elif key == "$ref" and isinstance(v, str):
            out[key] = v.replace("#/$defs/", "#/definitions/")
        elif key == "const":
            out["enum"] = [v]
        elif key == "properties" and isinstance(v, dict):
            out[key] = {k: draft4(p) for k, p in v.items()}
        else:
            out[key] = draft4(v)
    return out


def schema_files():
    """(logical id, schema name, file) for the envelope and every event."""
    files = [("EnvelopeSchema", "lector@Envelope", ROOT / "schemas" / "envelope.v1.json")]
    for path in sorted((ROOT / "schemas" / "events").glob("*.json")):
        event = path.name.split(".")[0]
        files.append((f"{event}Schema", f"lector@{event}", path))
    return files


def yaml_single_quoted(text):
    return "'" + text.replace("'", "''") + "'"


def block():
    lines = [BEGIN]
    for logical_id, name, path in schema_files():
        schema = json.loads(path.read_text(encoding="utf-8"))
        content = json.dumps(draft4(schema), ensure_ascii=False, separators=(",", ":"))
        description = schema.get("description", name).split("\n")[0]
        lines += [
            f"  {logical_id}:\n",
            "    Type: AWS::EventSchemas::Schema\n",
            "    Properties:\n",
            "      RegistryName: !GetAtt SchemaRegistry.RegistryName\n",
            f"      SchemaName: {name}\n",
            "      Type: JSONSchemaDraft4\n",
            f"      Description: {yaml_single_quoted(description[:256])}\n",
            f"      Content: {yaml_single_quoted(content)}\n",
        ]
    lines.append(END)
    return "".join(lines)


def main():
    text = TEMPLATE.read_text(encoding="utf-8")
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        sys.exit(f"{TEMPLATE}: the generated schemas block's markers are missing")
    updated = text[:start] + block() + text[end + len(END):]
    if "--check" in sys.argv[1:]:
        if updated != text:
            sys.exit("template.yaml's schemas are stale: run scripts/template-schemas.py")
        return
    TEMPLATE.write_text(updated, encoding="utf-8")


if __name__ == "__main__":
    main()

"""Checks the OpenAPI document and live answers against it (run by tests/it/openapi.rs in the
cached venv of tests/it/common/openapi.rs).

argv[1]: the document as served. argv[2]: a JSON list of exchanges, each
{"path": "/api/v1/windows", "status": 400, "content_type": "...", "headers": {...}, "body": "..."}
(`path` without its query). Prints one line per check; exits 1 if any failed, or if a path of
the document, a response it documents (but 500), one of that response's media types or one of
its optional headers was never exercised. A header the document marks `required` must be in
every such answer; an optional one is checked whenever it is there."""
import json
import sys

from importlib.metadata import version

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOC_URI = "urn:power-revenue:openapi"

doc = json.load(open(sys.argv[1]))
exchanges = json.load(open(sys.argv[2]))
failures = []

validate(doc)  # raises on an invalid document
print(f"openapi-spec-validator {version('openapi-spec-validator')}: the document is valid "
      f"OpenAPI {doc['openapi']} ({len(doc['paths'])} paths, "
      f"{len(doc['components']['schemas'])} schemas)")

registry = Registry().with_resource(DOC_URI, Resource(contents=doc, specification=DRAFT202012))


def pointer(*parts):
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def resolve(node, where):
    """A response object, following a `$ref` to components; returns it and its pointer."""
    if "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        target = doc
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        return target, ref[1:]
    return node, where


exercised = set()
headers_seen = set()
for x in exchanges:
    path, status = x["path"], str(x["status"])
    what = f"GET {path} {status}"
    op = doc["paths"].get(path, {}).get("get")
    if op is None:
        failures.append(f"{what}: the document has no such operation")
        continue
    if status not in op["responses"]:
        failures.append(f"{what}: the document has no {status} response "
                        f"(documented: {sorted(op['responses'])})")
        continue
    response, where = resolve(op["responses"][status], pointer("paths", path, "get", "responses", status))
    for name, header in response.get("headers", {}).items():
        value = x["headers"].get(name.lower())
        if value is None:
            if header.get("required", False):
                failures.append(f"{what}: header {name} missing")
            continue
        headers_seen.add((path, status, name))
        errors = list(Draft202012Validator(header["schema"]).iter_errors(value))
        if errors:
            failures.append(f"{what}: header {name}: {errors[0].message}")
    media = x["content_type"].split(";")[0].strip()
    if media not in response.get("content", {}):
        failures.append(f"{what}: content type {media!r}, documented {sorted(response.get('content', {}))}")
        continue
    exercised.add((path, status, media))
    body = json.loads(x["body"]) if media == "application/json" else x["body"]
    schema = {"$ref": DOC_URI + "#" + where + pointer("content", media, "schema")}
    validator = Draft202012Validator(schema, registry=registry,
                                     format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        for e in errors[:5]:
            at = "/".join(str(p) for p in e.absolute_path)
            failures.append(f"{what}: at /{at}: {e.message[:300]}")
    else:
        print(f"ok {what} ({media}, {len(x['body'])} bytes)")

for path, item in doc["paths"].items():
    for status, response in item["get"]["responses"].items():
        if status == "500":
            continue
        response, _ = resolve(response, "")
        for media in response.get("content", {}):
            if (path, status, media) not in exercised:
                failures.append(f"GET {path} {status} ({media}): documented but never exercised")
        for name in response.get("headers", {}):
            if (path, status, name) not in headers_seen:
                failures.append(f"GET {path} {status}: header {name} documented but never seen")

print(f"jsonschema {version('jsonschema')} (Draft 2020-12, formats checked): "
      f"{len(exchanges)} answers checked, {len(failures)} problem(s)")
for f in failures:
    print("FAIL", f)
sys.exit(1 if failures else 0)

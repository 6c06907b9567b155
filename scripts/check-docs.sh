#!/usr/bin/env bash
# Checks that the documentation agrees with the tree (part of the `lint`
# stage of scripts/test.sh):
#   - every relative link in README.md, docs/ and gateway/web/README.md
#     names a file that exists, and its #anchor a heading of that file;
#   - every path of the tree they quote (`broker/src/...`) exists, unless
#     git ignores it (files the scripts generate);
#   - every environment variable of dispatch-gateway and dispatch-broker
#     (`env = "..."` in their sources) is documented in README.md;
#   - every name in capitals that docs/architecture.md quotes (a flag or a
#     constant of the code) still exists in the sources.
# Prints one line per problem and exits 1 if there is any.
set -euo pipefail
cd "$(dirname "$0")/.."

exec python3 - "$@" <<'PY'
import os
import re
import subprocess
import sys

DOCS = ["README.md", "gateway/web/README.md"] + sorted(
    os.path.join("docs", f) for f in os.listdir("docs") if f.endswith(".md"))
SOURCES = ["gateway/src", "broker/src", "proto", "testkit/src", "bench/src"]
GRPC_CODES = {"INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
              "FAILED_PRECONDITION", "OUT_OF_RANGE", "DEADLINE_EXCEEDED"}
problems = []


def prose(path):
    """The file's lines outside fenced code blocks, with inline code removed."""
    out, fenced = [], False
    for number, line in enumerate(open(path, encoding="utf-8"), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            out.append((number, re.sub(r"`[^`]*`", "", line)))
    return out


def slug(heading):
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path):
    seen, found = {}, set()
    for _, line in prose_with_code_headings(path):
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def prose_with_code_headings(path):
    """Lines outside fenced blocks, inline code kept (headings may hold code)."""
    out, fenced = [], False
    for number, line in enumerate(open(path, encoding="utf-8"), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            out.append((number, line))
    return out


def check_links(doc):
    for number, line in prose(doc):
        for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", line):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):
                continue  # https:, mailto: ...
            path, _, anchor = target.partition("#")
            resolved = os.path.normpath(os.path.join(os.path.dirname(doc), path)) if path else doc
            where = f"{doc}:{number}: link {target}"
            if not os.path.exists(resolved):
                problems.append(f"{where}: no file {resolved}")
            elif anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
                problems.append(f"{where}: no heading #{anchor} in {resolved}")


def check_paths(doc):
    roots = "|".join(["gateway", "broker", "proto", "testkit", "bench", "scripts", "compose", "docs"])
    for number, line in prose_with_code_headings(doc):
        for path in re.findall(rf"`((?:{roots})/[^`\s]*)`", line):
            if re.search(r"[*<{]", path) or os.path.exists(path):
                continue
            ignored = subprocess.run(["git", "check-ignore", "-q", path]).returncode == 0
            if not ignored:
                problems.append(f"{doc}:{number}: {path} does not exist")


def source_text(roots, suffixes=(".rs", ".proto")):
    for root in roots:
        for folder, _, files in os.walk(root):
            for name in files:
                if name.endswith(suffixes):
                    yield open(os.path.join(folder, name), encoding="utf-8").read()


def check_variables():
    readme = open("README.md", encoding="utf-8").read()
    for text in source_text(["gateway/src", "broker/src"]):
        for name in re.findall(r'\benv\s*=\s*"([A-Z][A-Z0-9_]*)"', text):
            if f"`{name}`" not in readme:
                problems.append(f"README.md: the environment variable {name} is not documented")


def check_quoted_names():
    code = "\n".join(source_text(SOURCES))
    for number, line in prose_with_code_headings("docs/architecture.md"):
        for name in re.findall(r"`([A-Z][A-Z0-9]*_[A-Z0-9_]+)`", line):
            if name in GRPC_CODES:
                continue
            if not re.search(rf"\b{name}\b", code):
                problems.append(f"docs/architecture.md:{number}: {name} is neither a flag nor a constant of the code")


for doc in DOCS:
    check_links(doc)
    check_paths(doc)
check_variables()
check_quoted_names()
for problem in sorted(set(problems)):
    print(problem)
if problems:
    print(f"check-docs: {len(set(problems))} problem(s)", file=sys.stderr)
    sys.exit(1)
print("check-docs: links, anchors, paths, variables and quoted names agree with the tree")
PY

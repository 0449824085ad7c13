#!/usr/bin/env python3
"""The gateway's inner boundaries, checked: no import circle between its
modules (a file is a module; `crate::…`, `super::…` and `self::…` paths are
its arrows; a child using its parent's namespace is not an arrow back), and
no file over 500 lines unless its module doc says why ("over 500 lines
because").

    python3 scripts/module_graph.py           # print the graph, then check
    python3 scripts/module_graph.py --check   # check only (CI)
"""

import collections
import glob
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gateway", "src")
MAX_LINES = 500
# Circles kept on purpose, each explained in ARCHITECTURE.md.
ALLOWED_CIRCLES = [
    # The API's object graph: a receiver lists its subscriptions, and a
    # subscription names its receiver. Each resolver lives with its type.
    ["api::receivers::object", "api::subscriptions"],
]


def module_path(path):
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


def code_of(text):
    text = re.split(r"#\[cfg\(test\)\]\s*mod tests", text)[0]
    return "\n".join(l for l in text.split("\n") if not l.strip().startswith("//"))


def graph():
    files = glob.glob(os.path.join(ROOT, "**", "*.rs"), recursive=True)
    modules = {module_path(f): f for f in files}

    def resolve(parts):
        for k in range(len(parts), 0, -1):
            if tuple(parts[:k]) in modules:
                return tuple(parts[:k])
        return None

    edges = collections.defaultdict(set)
    for module, path in modules.items():
        if module == ("testing",):
            continue  # the test facade re-exports everything; nothing uses it
        code = code_of(open(path, encoding="utf-8").read())
        for ref in re.findall(
            r"\b(crate(?:::[a-z_][a-z0-9_]*)+|(?:super::)+(?:[a-z_][a-z0-9_]*(?:::)?)*|self::[a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)",
            code,
        ):
            segs = ref.split("::")
            if segs[0] == "crate":
                target = segs[1:]
            elif segs[0] == "self":
                target = list(module) + segs[1:]
            else:
                n = 0
                while n < len(segs) and segs[n] == "super":
                    n += 1
                target = list(module)[: len(module) - n] + [s for s in segs[n:] if s]
            t = resolve(target)
            if t is None or t == module or t == module[: len(t)]:
                continue
            edges[module].add(t)
        # `use child::Item;` (a path relative to this module, no prefix).
        for first in re.findall(r"\buse\s+(?:pub\([a-z]+\)\s+)?([a-z_][a-z0-9_]*)::", code):
            child = module + (first,)
            if child in modules:
                edges[module].add(child)
        for first in re.findall(r"(?m)^\s*pub(?:\([a-z]+\))?\s+use\s+([a-z_][a-z0-9_]*)::", code):
            child = module + (first,)
            if child in modules:
                edges[module].add(child)
    return modules, edges


def circles(modules, edges):
    index, low, stack, on, found = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted("::".join(m) for m in comp))

    for v in modules:
        if v not in index:
            visit(v)
    return [c for c in found if c not in ALLOWED_CIRCLES]


def oversized(modules):
    out = []
    for module, path in modules.items():
        text = open(path, encoding="utf-8").read()
        lines = text.count("\n")
        if lines > MAX_LINES and "over 500 lines because" not in text[:3000]:
            out.append((os.path.relpath(path, ROOT), lines))
    return out


def main():
    modules, edges = graph()
    if "--check" not in sys.argv:
        for m in sorted(edges):
            print("::".join(m), "->", ", ".join(sorted("::".join(t) for t in edges[m])))
    bad = circles(modules, edges)
    big = oversized(modules)
    for c in bad:
        print("import circle:", " <-> ".join(c))
    for path, lines in big:
        print(f"{path}: {lines} lines, and its module doc does not say why it is over 500 lines")
    if bad or big:
        sys.exit(1)
    print(f"module graph: {len(modules)} modules, no import circle, none over {MAX_LINES} lines")


if __name__ == "__main__":
    main()

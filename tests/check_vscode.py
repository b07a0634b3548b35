#!/usr/bin/python3
"""The IDE route's files are consistent (CTest `vscode_files`; python3 standard library only).

    check_vscode.py SOURCE_DIR

.vscode/launch.json, tasks.json, settings.json and .devcontainer/devcontainer.json parse (JSON
with // comments, as VS Code reads them); every launch configuration's program is a target the
build makes (examples/NAME.cpp is the program NAME; tests/tests_f32) under build/debug; its
preLaunchTask names a task of tasks.json, and that task builds that very target with the debug
preset; every task's dependsOn names a task; the files a configuration sources exist; settings
point IntelliSense and clangd at build/debug's compile_commands.json, which cmake/debuggers.cmake
asks CMake to write; the dev container is Debian 12 running scripts/setup.sh with groups it has.
Exits 1 naming the file and what is wrong.
"""
import json
import os
import re
import sys

errors = []


def err(where, what):
    errors.append("%s: %s" % (where, what))


def load_jsonc(path):
    """JSON with // and /* */ comments (outside strings) and trailing commas, as VS Code."""
    text = open(path, encoding="utf-8").read()
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("//", i):
            i = text.find("\n", i) if "\n" in text[i:] else n
        elif text.startswith("/*", i):
            i = text.index("*/", i) + 2
        else:
            out.append(c)
            i += 1
    clean = re.sub(r",(\s*[}\]])", r"\1", "".join(out))
    try:
        return json.loads(clean)
    except json.JSONDecodeError as e:
        err(path, "does not parse: %s" % e)
        return None


def main(src):
    vs = os.path.join(src, ".vscode")
    launch = load_jsonc(os.path.join(vs, "launch.json"))
    tasks = load_jsonc(os.path.join(vs, "tasks.json"))
    settings = load_jsonc(os.path.join(vs, "settings.json"))
    dc = load_jsonc(os.path.join(src, ".devcontainer", "devcontainer.json"))
    if None in (launch, tasks, settings, dc):
        return
    labels = {t.get("label"): t for t in tasks.get("tasks", [])}
    for t in tasks.get("tasks", []):
        for dep in t.get("dependsOn", []):
            if dep not in labels:
                err("tasks.json", "task %r depends on %r, which is not a task" % (t["label"], dep))
    examples = {f[:-4] for f in os.listdir(os.path.join(src, "examples")) if f.endswith(".cpp")}
    tests_cmake = open(os.path.join(src, "tests", "CMakeLists.txt")).read()
    confs = launch.get("configurations", [])
    if not confs:
        err("launch.json", "no configurations")
    for c in confs:
        where = "launch.json %r" % c.get("name")
        prog = c.get("program", "")
        m = re.fullmatch(r"\$\{workspaceFolder\}/build/debug/(examples|tests)/(\w+)", prog)
        if not m:
            err(where, "program %r is not build/debug/examples/NAME or build/debug/tests/NAME"
                % prog)
            continue
        kind, target = m.groups()
        if kind == "examples" and target not in examples:
            err(where, "program %s: there is no examples/%s.cpp" % (target, target))
        if kind == "tests" and not (target.startswith("tests_") and
                                    re.search(r"foreach\(variant IN ITEMS[^)]*\b%s\b" %
                                              target[len("tests_"):], tests_cmake)):
            err(where, "program %s is not a test target of tests/CMakeLists.txt" % target)
        task = c.get("preLaunchTask")
        if task not in labels:
            err(where, "preLaunchTask %r is not a task of tasks.json" % task)
        else:
            chain, seen = [task], set()
            while chain:
                t = labels[chain.pop()]
                if t["label"] in seen:
                    continue
                seen.add(t["label"])
                chain += [d for d in t.get("dependsOn", []) if d in labels]
            commands = " && ".join(labels[t].get("command", "") for t in seen)
            if not re.search(r"--preset debug\b.*--target (\S+ )*%s\b" % target, commands):
                err(where, "preLaunchTask %r does not build %s with the debug preset (%s)"
                    % (task, target, commands))
            if "cmake --preset debug" not in commands:
                err(where, "preLaunchTask %r does not configure the debug preset first" % task)
        texts = [s.get("text", "") for s in c.get("setupCommands", [])] + \
            c.get("initCommands", [])
        for t in texts:
            for path in re.findall(r"\$\{workspaceFolder\}/(\S+\.py)", t):
                if not os.path.exists(os.path.join(src, path)):
                    err(where, "sources %s, which does not exist" % path)
        if c.get("type") == "cppdbg":
            if "-enable-pretty-printing" not in texts:
                err(where, "no -enable-pretty-printing in setupCommands")
            if not any("scripts/gdb/tapegrad.py" in t for t in texts):
                err(where, "does not source scripts/gdb/tapegrad.py")
    cc = "${workspaceFolder}/build/debug/compile_commands.json"
    if settings.get("C_Cpp.default.compileCommands") != cc:
        err("settings.json", "C_Cpp.default.compileCommands is not %s" % cc)
    if "--compile-commands-dir=${workspaceFolder}/build/debug" not in \
            settings.get("clangd.arguments", []):
        err("settings.json", "clangd.arguments lack --compile-commands-dir=.../build/debug")
    dbg = open(os.path.join(src, "cmake", "debuggers.cmake")).read()
    if not re.search(r"set\(CMAKE_EXPORT_COMPILE_COMMANDS ON", dbg):
        err("cmake/debuggers.cmake", "does not turn CMAKE_EXPORT_COMPILE_COMMANDS on")
    if dc.get("image") != "debian:12":
        err("devcontainer.json", "image %r is not debian:12" % dc.get("image"))
    post = dc.get("postCreateCommand", "")
    m = re.fullmatch(r"bash scripts/setup\.sh((?: \w+)*)", post)
    if not m:
        err("devcontainer.json", "postCreateCommand %r is not `bash scripts/setup.sh GROUP...`"
            % post)
    else:
        setup = open(os.path.join(src, "scripts", "setup.sh")).read()
        for g in m.group(1).split():
            if "GROUP_PACKAGES[%s]=" % g not in setup:
                err("devcontainer.json", "scripts/setup.sh has no group %r" % g)


if __name__ == "__main__":
    main(sys.argv[1])
    for e in errors:
        print("FAIL: " + e)
    if errors:
        sys.exit(1)
    print("vscode files: OK")

#!/usr/bin/python3
"""Checks that the documentation is true (CTest runs this; see tests/CMakeLists.txt).

    check_docs.py snippets REPO
        README.md's first program (the ```cpp block under "## A first look") is, character for
        character, examples/first_look.cpp; its 5-line CMakeLists (the ```cmake block) is
        tests/consumer/CMakeLists.txt, which scripts/ci/consumer.sh builds against an install.
        Its "## Your own tensors" ```cpp block is, dedented, the code tests/test_data_tensor.cpp
        runs between its two `// README.md "Your own tensors"` markers.

    check_docs.py commands REPO BUILD_DIR
        Runs every fenced ```sh block of README.md, docs/*.md and data/README.md, in order, each
        with bash -euo pipefail, in a scratch directory that looks like the repository (its
        top-level entries symlinked; build/release and build/debug point at BUILD_DIR, the
        build CTest runs in; out/ is the scratch's own). A program of ours that takes --quick
        gets it, so the whole test takes seconds. The blocks run as a reader runs them after
        the main job (scripts/run_chapter.sh): a block running a build/release program that
        the main job does not build (its `programs` and `also_built` lists) fails, although the
        test's build has every program. A block running cmake fails unmarked: it
        would configure or build in BUILD_DIR itself. A block that must not run here (it installs
        packages, builds another preset, runs the test suite itself, needs a network or a
        person at a debugger) is preceded by the line
            <!-- not run by tests/check_docs.py: <why> -->
        and a block without a reason fails, as does any block exiting non-zero.

    check_docs.py reader REPO
        README.md's sh blocks as a reader runs them, in REPO itself, right after the main job
        (`bash scripts/run_chapter.sh`) really ran there: every block not marked as above, in
        the README's order, as written (no --quick added, nothing built: build/release holds
        what run_chapter.sh built and nothing else). A block exiting non-zero fails; so does
        a README whose blocks run no build/release program. scripts/ci/fresh_machine.sh runs
        this in its pristine root after run_chapter.sh --quick; it is not a CTest (CTest's
        build has every program, so a program the main job does not build would go unseen).
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

SKIP = re.compile(r"<!--\s*not run by tests/check_docs\.py:\s*(.*?)\s*-->")
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.S | re.M)
PROGRAM = re.compile(r"(?<!\w)(\./)?build/(release|debug|ci)/(examples|bench)/(\w+)")


def blocks(path):
    """(language, code, skip reason or None, line number) of each fenced block in `path`."""
    text = open(path, encoding="utf-8").read()
    out = []
    for m in FENCE.finditer(text):
        before = text[:m.start()].rstrip().splitlines()
        prev = before[-1] if before else ""
        skip = SKIP.search(prev)
        # A marker that does not parse counts as one without a reason (and fails).
        reason = skip.group(1) if skip else ("" if "not run by" in prev else None)
        out.append((m.group(1), m.group(2), reason,
                    text.count("\n", 0, m.start()) + 1))
    return out


def snippets(repo):
    readme = open(os.path.join(repo, "README.md"), encoding="utf-8").read()
    section = readme.split("## A first look", 1)
    if len(section) != 2:
        sys.exit("check_docs: README.md has no '## A first look' section")
    body = section[1].split("\n## ", 1)[0]
    found = {lang: code for lang, code in
             ((m.group(1), m.group(2)) for m in FENCE.finditer(body))}
    failures = []
    for lang, path in (("cpp", "examples/first_look.cpp"),
                       ("cmake", "tests/consumer/CMakeLists.txt")):
        want = open(os.path.join(repo, path), encoding="utf-8").read()
        if lang not in found:
            failures.append(f"README.md's first look has no ```{lang} block (expected {path})")
        elif found[lang] != want:
            a, b = found[lang].splitlines(), want.splitlines()
            line = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
            failures.append(f"README.md's ```{lang} block differs from {path} at line {line + 1}:"
                            f"\n  README: {a[line] if line < len(a) else '(ends)'}"
                            f"\n  file:   {b[line] if line < len(b) else '(ends)'}")
        else:
            print(f"  ok   README.md's ```{lang} block is {path} ({len(want.splitlines())} lines)")
    # README.md's "Your own tensors" example is, dedented, the block of
    # tests/test_data_tensor.cpp between its two markers, which that test runs.
    own = readme.split("## Your own tensors", 1)
    test_path = "tests/test_data_tensor.cpp"
    test = open(os.path.join(repo, test_path), encoding="utf-8").read()
    marked = re.search(r'// README\.md "Your own tensors" begins\n(.*?)^\s*// README\.md "Your own '
                       r'tensors" ends', test, re.S | re.M)
    blocks_here = [m.group(2) for m in FENCE.finditer(own[1].split("\n## ", 1)[0])
                   if m.group(1) == "cpp"] if len(own) == 2 else []
    if not marked:
        failures.append(f"{test_path} has no README.md \"Your own tensors\" markers")
    elif len(blocks_here) != 1:
        failures.append("README.md's '## Your own tensors' section has no (single) ```cpp block")
    elif blocks_here[0] != textwrap.dedent(marked.group(1)):
        a, b = blocks_here[0].splitlines(), textwrap.dedent(marked.group(1)).splitlines()
        line = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
        failures.append(f"README.md's 'Your own tensors' block differs from {test_path} at its "
                        f"line {line + 1}:\n  README: {a[line] if line < len(a) else '(ends)'}"
                        f"\n  test:   {b[line] if line < len(b) else '(ends)'}")
    else:
        print(f"  ok   README.md's 'Your own tensors' block is {test_path}'s marked code "
              f"({len(blocks_here[0].splitlines())} lines)")
    # A fence with text after it (```` ``` Each PNG ...````) closes nothing in Markdown: the
    # block runs on and swallows the blocks after it, which then never run.
    for path in [os.path.join(repo, "README.md")] + sorted(glob.glob(os.path.join(repo, "docs", "*.md"))):
        for number, line in enumerate(open(path, encoding="utf-8").read().splitlines(), 1):
            if re.match(r"^```\s*\S", line) and not re.match(r"^```\w+\s*$", line):
                failures.append(f"{os.path.relpath(path, repo)}:{number}: a fence with text after "
                                f"it does not close a block: {line[:60]!r}")
    if failures:
        sys.exit("check_docs: " + "\n".join(failures))


def quick_flag(build, program, cache={}):
    """" --quick" if the built program takes --quick (its --help says so), else ""."""
    if program not in cache:
        exe = os.path.join(build, "examples", program)
        try:
            helptext = subprocess.run([exe, "--help"], capture_output=True, text=True,
                                      timeout=30).stdout
        except OSError:
            helptext = ""
        cache[program] = " --quick" if "--quick" in helptext else ""
    return cache[program]


def main_job_targets(repo):
    """The programs scripts/run_chapter.sh builds into build/release: its programs=(...) and
    also_built=(...) lists, and ch310_sync_batchnorm, which it builds when Open MPI is there."""
    text = open(os.path.join(repo, "scripts", "run_chapter.sh"), encoding="utf-8").read()
    targets = set()
    for name in ("programs", "also_built"):
        m = re.search(r"^" + name + r"=\((.*?)\)", text, re.S | re.M)
        if not m:
            sys.exit(f"check_docs: scripts/run_chapter.sh has no {name}=(...) list")
        targets.update(re.sub(r"#[^\n]*", "", m.group(1)).split())
    if "--target ch310_sync_batchnorm" in text:
        targets.add("ch310_sync_batchnorm")
    return targets


def commands(repo, build):
    docs = [os.path.join(repo, "README.md"), os.path.join(repo, "data", "README.md")]
    docs += sorted(glob.glob(os.path.join(repo, "docs", "*.md")))
    built = main_job_targets(repo)
    scratch = tempfile.mkdtemp(prefix="tapegrad-docs-")
    try:
        for entry in os.listdir(repo):
            if entry not in ("build", "out", ".git", ".home"):
                os.symlink(os.path.join(repo, entry), os.path.join(scratch, entry))
        os.makedirs(os.path.join(scratch, "build"))
        for preset in ("release", "debug", "ci"):
            os.symlink(os.path.abspath(build), os.path.join(scratch, "build", preset))
        # A scratch HOME: a block writing into ~ (a dotfile) leaves nothing behind.
        os.makedirs(os.path.join(scratch, ".home"))
        env = dict(os.environ, PATH="/usr/bin:/bin:" + os.environ.get("PATH", ""),
                   HOME=os.path.join(scratch, ".home"))
        ran = skipped = 0
        failures = []
        for doc in docs:
            rel = os.path.relpath(doc, repo)
            for lang, code, skip, line in blocks(doc):
                if lang not in ("sh", "bash", "shell"):
                    continue
                where = f"{rel}:{line}"
                if skip is not None:
                    if not skip:
                        failures.append(f"{where}: 'not run by tests/check_docs.py' without a reason")
                    print(f"  skip {where}: {skip}")
                    skipped += 1
                    continue

                def add_quick(m):
                    return m.group(0) + quick_flag(build, m.group(4)) if m.group(3) == "examples" else m.group(0)

                if re.search(r"\bcmake\b", code):
                    # It would configure or build in build/<preset>, i.e. in this test's own build.
                    failures.append(f"{where}: runs cmake; mark it not to run (CTest builds)")
                    print(f"  FAIL {where}: runs cmake")
                    continue
                # After the main job, build/release has only what run_chapter.sh built.
                missing = sorted({m.group(4) for m in PROGRAM.finditer(code)
                                  if m.group(2) == "release" and m.group(4) not in built})
                if missing:
                    failures.append(f"{where}: runs {', '.join(missing)}, which the main job "
                                    f"(scripts/run_chapter.sh) does not build: a reader who ran "
                                    f"it has no such file (build it there, or say how)")
                    print(f"  FAIL {where}: runs {', '.join(missing)}, not built by the main job")
                    continue
                # --quick goes right after the program, before the block's own flags.
                script = PROGRAM.sub(add_quick, code)
                t0 = time.time()
                r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=scratch, env=env,
                                   capture_output=True, text=True, timeout=600)
                took = time.time() - t0
                first = code.strip().splitlines()[0] if code.strip() else ""
                if r.returncode != 0:
                    failures.append(f"{where}: exit {r.returncode} ({took:.1f} s)\n--- the block\n{script}"
                                    f"--- output (last lines)\n" + "\n".join(
                                        (r.stdout + r.stderr).strip().splitlines()[-15:]))
                    print(f"  FAIL {where}: {first}")
                else:
                    print(f"  ok   {where} ({took:.1f} s): {first}")
                ran += 1
        print(f"check_docs: {ran} blocks run, {skipped} marked not to run")
        if failures:
            sys.exit("check_docs:\n" + "\n\n".join(failures))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def reader(repo):
    readme = os.path.join(repo, "README.md")
    env = dict(os.environ, PATH="/usr/bin:/bin:" + os.environ.get("PATH", ""))
    ran = skipped = programs = 0
    failures = []
    for lang, code, skip, line in blocks(readme):
        if lang not in ("sh", "bash", "shell"):
            continue
        where = f"README.md:{line}"
        if skip is not None:
            print(f"  skip {where}: {skip or '(no reason: check_docs.py commands fails on it)'}")
            skipped += 1
            continue
        programs += sum(1 for m in PROGRAM.finditer(code) if m.group(2) == "release")
        first = code.strip().splitlines()[0] if code.strip() else ""
        t0 = time.time()
        r = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=repo, env=env,
                           capture_output=True, text=True, timeout=1200)
        took = time.time() - t0
        ran += 1
        if r.returncode != 0:
            failures.append(f"{where}: exit {r.returncode} ({took:.1f} s), run as written after "
                            f"the main job\n--- the block\n{code}--- output (last lines)\n" +
                            "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:]))
            print(f"  FAIL {where} ({took:.1f} s): {first}")
        else:
            print(f"  ok   {where} ({took:.1f} s): {first}")
    if programs == 0:
        failures.append("README.md: no unmarked block runs a build/release program (nothing a "
                        "reader does after the main job was tried)")
    print(f"check_docs reader: {ran} README blocks run in order after the main job, "
          f"{skipped} marked not to run")
    if failures:
        sys.exit("check_docs reader:\n" + "\n\n".join(failures))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "snippets":
        snippets(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "reader":
        reader(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "commands":
        commands(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

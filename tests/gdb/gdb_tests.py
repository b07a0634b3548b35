#!/usr/bin/python3
"""gdb in batch mode on the debug build (CTest label `gdb`, scripts/ci/gdb.sh).

    gdb_tests.py printers    GDB SOURCE_DIR FIXTURE        the printers' text for known values
    gdb_tests.py walkthrough GDB SOURCE_DIR EXAMPLES_DIR   docs/debugging.md's gdb sessions, replayed
    gdb_tests.py steps       GDB SOURCE_DIR EXAMPLES_DIR   step counts the doc promises

EXAMPLES_DIR is the debug build's directory of chapter programs: each session of the doc runs
the program its `gdb ... --args ./build/debug/examples/NAME` line names, from there.

printers: gdb stops in tests/gdb/gdb_fixture.cpp, runs tests/gdb/printers.gdb, and its output
must equal tests/gdb/printers.expected (values written by hand from the fixture's source);
the module and tape text must also equal what the program itself prints (Module::print,
Tape::print: C++ code the Python printers do not share).

walkthrough: every ```gdb block of docs/debugging.md that follows a `$ gdb ...` command line
is run in one gdb session. Lines starting "(gdb) " are commands; the lines after one are its
output as the doc shows it, and the real output must match line for line, where "<...>"
inside a line stands for any text and a line "<...>" for any number of lines. A command that
fails (gdb's "Error in sourced command file") fails the test.

steps: the doc's route from the program's line `tape.backward(loss)` into BatchNorm's backward
kernel (the command that runs to that line, then step/next commands only): gdb must start on
that line and end in the kernel the doc shows, and the route's length must be the doc's
promise ("at most N `step`/`next`").
And, forward, that at most FORWARD_STEPS `step`s go from `break tg::batch_norm` to the first
line of the loop that sums for mu_B in the reference kernel (issue 9).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

NOISE = re.compile(r"^(\[New Thread |\[Thread |Using host libthread_db|"
                   r"\[Thread debugging using libthread_db|warning: Error disabling address "
                   r"space randomization)")
MARK = "@@@ command "


def run_gdb(gdb, source_dir, args, commands, extra=()):
    """Runs gdb -batch from the source directory with scripts/gdb/gdbinit and `commands`;
    returns (exit code, output lines without thread noise)."""
    with tempfile.NamedTemporaryFile("w", suffix=".gdb", delete=False) as f:
        f.write("\n".join(commands) + "\n")
        script = f.name
    try:
        cmd = [gdb, "-nx", "-batch", "-ix", "scripts/gdb/gdbinit", *extra, "-x", script,
               "--args", *args]
        env = dict(os.environ, TERM="dumb", COLUMNS="200", LC_ALL="C.UTF-8")
        proc = subprocess.run(cmd, cwd=source_dir, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=600)
    finally:
        os.unlink(script)
    lines = [l for l in proc.stdout.splitlines() if not NOISE.match(l)]
    return proc.returncode, lines


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


# ---- printers ----------------------------------------------------------------------------


def printers(gdb, source_dir, fixture):
    here = os.path.join(source_dir, "tests", "gdb")
    with open(os.path.join(here, "printers.gdb")) as f:
        commands = [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#")]
    # Without the init file: the printers must come from the program's auto-load entry.
    with tempfile.NamedTemporaryFile("w", suffix=".gdb", delete=False) as f:
        f.write("\n".join(commands) + "\n")
        script = f.name
    try:
        proc = subprocess.run([gdb, "-nx", "-batch", "-iex",
                               "add-auto-load-safe-path " + source_dir, "-x", script, fixture],
                              cwd=source_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=300, env=dict(os.environ, LC_ALL="C.UTF-8"))
    finally:
        os.unlink(script)
    lines = [l for l in proc.stdout.splitlines() if not NOISE.match(l)]
    text = "\n".join(lines)
    if "Error in sourced command file" in text:
        fail("gdb stopped on an error:\n" + text)
    start = next((i for i, l in enumerate(lines) if l.startswith("==== ")), None)
    if start is None:
        fail("no printer output (were the printers auto-loaded?):\n" + text)
    got = lines[start:]
    with open(os.path.join(here, "printers.expected")) as f:
        expected = f.read().rstrip("\n").splitlines()
    if got != expected:
        import difflib
        fail("printer output differs from tests/gdb/printers.expected:\n" +
             "\n".join(difflib.unified_diff(expected, got, "expected", "gdb", lineterm="")))
    # The program's own Module::print and Tape::print (stdout, before the gdb session ended)
    # against the printers' text.
    own = subprocess.run([fixture], stdout=subprocess.PIPE, text=True, timeout=60).stdout
    section = lambda tag: own.split("<<" + tag + ">>\n")[1].split("<</" + tag + ">>")[0]
    model = section("model").rstrip("\n")
    if ("= " + model) not in "\n".join(got):
        fail("the Module printer differs from Module::print:\n" + model)
    tape = section("tape").rstrip("\n").replace("Tape with", "Tape #1 with", 1)
    if ("= " + tape) not in "\n".join(got):
        fail("the Tape printer differs from Tape::print:\n" + tape)
    print("printers: %d lines as expected; Module and Tape printers agree with Module::print "
          "and Tape::print" % len(got))


# ---- the walkthrough of docs/debugging.md ---------------------------------------------------


def doc_sessions(source_dir):
    """[(program args, [(command, [expected lines])])] for every `$ gdb` line of the doc and
    the ```gdb blocks after it (up to the next `$ gdb` line)."""
    with open(os.path.join(source_dir, "docs", "debugging.md")) as f:
        doc = f.read()
    sessions = []
    for block in re.finditer(r"```(\w*)\n(.*?)```", doc, re.S):
        lang, body = block.group(1), block.group(2)
        if lang in ("sh", "console", "bash"):
            for line in body.splitlines():
                m = re.match(r"^\$? ?gdb -ix scripts/gdb/gdbinit (?:-ex '[^']*' )*--args (.*)$",
                             line.strip())
                if m:
                    sessions.append((m.group(1).split(), []))
        elif lang == "gdb" and sessions:
            steps = sessions[-1][1]
            for line in body.splitlines():
                if line.startswith("(gdb) "):
                    steps.append((line[6:].split("  #")[0].rstrip(), []))
                elif steps:
                    steps[-1][1].append(line)
    return sessions


def program_in(examples_dir, args):
    """The debug build of the program a doc session names (`./build/debug/examples/NAME`)."""
    path = os.path.join(examples_dir, os.path.basename(args[0]))
    if not os.path.isfile(path):
        fail("docs/debugging.md runs %s, but %s was not built (scripts/ci/gdb.sh builds the "
             "programs the doc uses)" % (args[0], path))
    return path


def line_matches(pattern, line):
    parts = [re.escape(p) for p in pattern.split("<...>")]
    return re.fullmatch(".*".join(parts), line) is not None


def match_output(expected, got):
    """True if `got` matches `expected` (with <...> wildcards), line for line."""
    expected = [l for l in expected if l.strip() or l == ""]
    while expected and expected[-1] == "":
        expected.pop()
    while got and got[-1] == "":
        got = got[:-1]

    def rec(i, j):
        if i == len(expected):
            return j == len(got)
        if expected[i].strip() == "<...>":
            return any(rec(i + 1, k) for k in range(j, len(got) + 1))
        return j < len(got) and line_matches(expected[i], got[j]) and rec(i + 1, j + 1)

    return rec(0, 0)


def walkthrough(gdb, source_dir, examples_dir):
    sessions = doc_sessions(source_dir)
    if not sessions:
        fail("docs/debugging.md has no `gdb -ix scripts/gdb/gdbinit --args ...` session")
    total = 0
    for args, steps in sessions:
        if not steps:
            continue
        argv = [program_in(examples_dir, args)] + args[1:]
        out_dir = tempfile.mkdtemp(prefix="tapegrad_gdb_")
        if "--out" not in argv:  # what the program writes goes to a directory removed after
            argv += ["--out", out_dir]
        commands = []
        for k, (command, _) in enumerate(steps):
            commands.append("echo %s%d\\n" % (MARK, k))
            commands.append(command)
        commands.append("echo %send\\n" % MARK)
        try:
            code, lines = run_gdb(gdb, source_dir, argv, commands)
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)
        text = "\n".join(lines)
        if "Error in sourced command file" in text:
            fail("a command of docs/debugging.md failed:\n" + text[-4000:])
        outputs, current = {}, None
        for line in lines:
            if line.startswith(MARK):
                current = line[len(MARK):]
                outputs[current] = []
            elif current is not None:
                outputs[current].append(line)
        if "end" not in outputs:
            fail("the session did not run to its end:\n" + text[-4000:])
        for k, (command, expected) in enumerate(steps):
            got = outputs.get(str(k), [])
            if not match_output(expected, got):
                fail("docs/debugging.md: `%s` printed\n%s\nbut the doc shows\n%s" %
                     (command, "\n".join(got), "\n".join(expected)))
        total += len(steps)
        print("session `gdb %s`: %d commands, output as the doc shows" % (" ".join(args),
                                                                          len(steps)))
    print("walkthrough: %d commands of docs/debugging.md replayed" % total)


# ---- step counts ------------------------------------------------------------------------------


MOVE = re.compile(r"(step|next|s|n)")
START = ("tape.backward(loss)", "loss.backward()")


def steps(gdb, source_dir, examples_dir):
    """The route of docs/debugging.md from the program's `tape.backward(loss)` line into
    BatchNorm's backward kernel: the command that runs to that line, then only step/next.
    gdb must be on that line before the first step, in the kernel the doc names after the
    last, and the doc must state the route's length as its promise."""
    with open(os.path.join(source_dir, "docs", "debugging.md")) as f:
        doc = f.read()
    promise = re.search(r"at most (\d+) `step`/`next`", doc)
    if not promise:
        fail("docs/debugging.md states no promise 'at most N `step`/`next`'")
    limit = int(promise.group(1))
    checked = 0
    for args, session in doc_sessions(source_dir):
        commands = [c for c, _ in session]
        for k, c in enumerate(commands):
            if not any(s in c for s in START):
                continue
            j = k + 1
            while j < len(commands) and MOVE.fullmatch(commands[j]):
                j += 1
            route = commands[k + 1:j]
            if not route:
                fail("no step/next after `%s` in docs/debugging.md" % c)
            # The kernel the doc shows gdb in after the route's last command.
            shown = [l for l in session[j - 1][1] if l.strip()]
            m = re.match(r"^(tg::[\w:]+) \(", shown[0]) if shown else None
            if not m or not m.group(1).endswith("batch_norm_backward"):
                fail("the doc's route does not end in a batch_norm_backward kernel: %s" % shown)
            target = m.group(1)
            script = (commands[:k + 1] + ["echo @@@ start\\n", "frame 0"] + route +
                      ["echo @@@ end\\n", "frame 0"])
            out_dir = tempfile.mkdtemp(prefix="tapegrad_gdb_")
            try:
                code, lines = run_gdb(gdb, source_dir,
                                      [program_in(examples_dir, args)] + args[1:] +
                                      ["--out", out_dir], script)
            finally:
                shutil.rmtree(out_dir, ignore_errors=True)
            text = "\n".join(lines)
            if "Error in sourced command file" in text or "@@@ end" not in text:
                fail("the route's commands failed:\n" + text[-3000:])
            start = text.split("@@@ start")[1].split("@@@ end")[0]
            begin = [l for l in start.splitlines() if l.startswith("#0")]
            source_line = next((l for l in start.splitlines() if re.match(r"^\d+\t", l)), "")
            if not begin or "examples/" not in begin[0] or not any(s in source_line
                                                                  for s in START):
                fail("before the first step gdb is not on the program's `%s` line:\n%s" %
                     (START[0], start[:2000]))
            frame = text.split("@@@ end")[-1]
            m = re.search(r"#0\s+(?:0x[0-9a-f]+ in )?([\w:~]+)", frame)
            where = m.group(1) if m else "?"
            if where != target:
                fail("after the doc's %d step/next from `%s`, gdb is in %s, not %s:\n%s" %
                     (len(route), source_line.strip(), where, target, text[-3000:]))
            if len(route) != limit:
                fail("the route takes %d step/next commands, the doc promises %d" %
                     (len(route), limit))
            counts = {name: sum(1 for r in route if r in (name, name[0]))
                      for name in ("step", "next")}
            print("steps: from `%s` (%s), %d step/next commands (%d step, %d next) reach %s, "
                  "as the doc says" % (source_line.split("\t", 1)[-1].strip(), begin[0].split(
                      " at ")[-1], len(route), counts["step"], counts["next"], target))
            checked += 1
    if not checked:
        fail("docs/debugging.md has no step/next route from `%s`" % START[0])
    forward_steps(gdb, source_dir, os.path.join(examples_dir, "ch310_train_cnn"))


# From `break tg::batch_norm`, at most this many `step`s reach the loop that sums for mu_B.
FORWARD_STEPS = 4


def forward_steps(gdb, source_dir, program):
    """`break tg::batch_norm`, run, then `step` until gdb is on the first line of the loop that
    sums x for mu_B in src/ops/kernels/reference/batch_norm.cpp: the first `for` line after the
    comment `// μ_B = 1/B Σ x` in batch_norm_forward."""
    kernel = "src/ops/kernels/reference/batch_norm.cpp"
    with open(os.path.join(source_dir, kernel), encoding="utf-8") as f:
        source = f.read().splitlines()
    comment = next((i for i, l in enumerate(source) if l.strip() == "// μ_B = 1/B Σ x"), None)
    if comment is None:
        fail("%s has no line `// μ_B = 1/B Σ x`" % kernel)
    target = next((i + 1 for i in range(comment + 1, len(source))
                   if source[i].strip().startswith("for ")), None)
    if target is None:
        fail("no `for` loop after `// μ_B = 1/B Σ x` in %s" % kernel)
    where = ("python s = gdb.selected_frame().find_sal(); print('@@@ at %s %s:%d' % "
             "(gdb.selected_frame().name(), s.symtab.filename if s.symtab else '?', s.line))")
    commands = ["break tg::batch_norm", "run", where]
    for _ in range(FORWARD_STEPS + 5):  # a few more, to say how many it would take
        commands += ["step", where]
    out_dir = tempfile.mkdtemp(prefix="tapegrad_gdb_")
    try:
        code, lines = run_gdb(gdb, source_dir, [program, "--quick", "--out", out_dir], commands)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    stops = [l[len("@@@ at "):] for l in lines if l.startswith("@@@ at ")]
    if not stops or not stops[0].startswith("tg::batch_norm "):
        fail("`break tg::batch_norm` did not stop in tg::batch_norm:\n" + "\n".join(lines[-40:]))
    route = "\n".join("  step %d: %s" % (k, stop) for k, stop in enumerate(stops))
    goal = "tg::kernels::reference::batch_norm_forward %s:%d" % (kernel, target)
    reached = next((k for k, stop in enumerate(stops)
                    if stop.startswith("tg::kernels::reference::batch_norm_forward ")
                    and stop.endswith(kernel + ":%d" % target)), None)
    if reached is None or reached > FORWARD_STEPS:
        fail("from `break tg::batch_norm`, %s steps reach %s (at most %d allowed):\n%s" %
             ("more than %d" % (len(stops) - 1) if reached is None else reached, goal,
              FORWARD_STEPS, route))
    print("steps: from `break tg::batch_norm`, %d steps reach the mu_B sum loop (%s:%d; at most "
          "%d)\n%s" % (reached, kernel, target, FORWARD_STEPS, route))


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("printers", "walkthrough", "steps"):
        print(__doc__)
        sys.exit(2)
    what, gdb, source_dir, binary = sys.argv[1:]
    {"printers": printers, "walkthrough": walkthrough, "steps": steps}[what](
        gdb, os.path.abspath(source_dir), os.path.abspath(binary))


if __name__ == "__main__":
    main()

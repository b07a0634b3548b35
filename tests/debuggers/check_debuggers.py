#!/usr/bin/python3
"""What a student sees of tapegrad's objects in an IDE's debugger (scripts/ci/debuggers.sh).

    check_debuggers.py mi        SOURCE_DIR PROGRAM   gdb's MI, driven as VS Code's extension does
    check_debuggers.py lldb      SOURCE_DIR PROGRAM   the same in lldb -b -s
    check_debuggers.py outside   SOURCE_DIR FIXTURE   gdb -ix .../gdbinit from another directory,
                                                      on a program in a build directory elsewhere
    check_debuggers.py installed PREFIX     PROGRAM   a consumer's Debug program against an
                                                      installed tapegrad, gdb -ix PREFIX/share/...

PROGRAM (mi, lldb) is the debug build's ch306_tape_backprop: the debugger stops at tg::batch_norm
(called from the model's BatchNorm1d), and must show
  - its input x as a Tensor with children shape (expanding to [0]=8, [1]=5), dtype, values
    (expanding to the elements: [0], [1], ...), requires_grad and recorded, and a one-line value;
  - in main's frame, `model` (a Sequential) with a child "1" of type BatchNorm1d, which expands
    to weight, bias, running_mean (a Tensor [5]) and running_var: two levels of children.
Exits 1 with the session's transcript on a failed check.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ENV = dict(os.environ, TERM="dumb", LC_ALL="C.UTF-8")


def fail(message, transcript=""):
    if transcript:
        print("---- transcript ----")
        print(transcript[-12000:])
        print("--------------------")
    print("FAIL: " + message)
    sys.exit(1)


def check(cond, message, transcript=""):
    if not cond:
        fail(message, transcript)


# ---- gdb/MI ----------------------------------------------------------------------------------

MI_CHILD = re.compile(r'child=\{name="([^"]*)",exp="([^"]*)",numchild="(\d+)"'
                      r'(?:,value="((?:[^"\\]|\\.)*)")?,type="((?:[^"\\]|\\.)*)"'
                      r'(?:,thread-id="\d+")?(?:,displayhint="(\w+)")?(?:,dynamic="1")?'
                      r'(?:,has_more="(\d)")?')


class MI:
    """gdb --interpreter=mi2, one command at a time, as VS Code's C/C++ extension drives it."""

    def __init__(self, program, cwd):
        self.proc = subprocess.Popen(["gdb", "--interpreter=mi2", "-nx", "-q"], cwd=cwd,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=ENV)
        self.log = []
        self.token = 0
        self.program = program

    def send(self, command, until=None, timeout_lines=200000):
        """Sends `command`; returns its result record (^done/^error line), or with `until`, reads
        on to the first line matching it (an async record such as *stopped)."""
        self.token += 1
        line_out = "%d%s\n" % (self.token, command)
        self.log.append("> " + line_out.rstrip())
        self.proc.stdin.write(line_out)
        self.proc.stdin.flush()
        result = None
        for _ in range(timeout_lines):
            line = self.proc.stdout.readline()
            if not line:
                fail("gdb exited during %r" % command, self.transcript())
            line = line.rstrip("\n")
            self.log.append(line)
            if result is None and re.match(r"^%d\^(done|running|error|connected|exit)" %
                                           self.token, line):
                result = line
                if result.startswith("%d^error" % self.token):
                    fail("gdb/MI error for %r: %s" % (command, line), self.transcript())
                if until is None:
                    return result
            if until is not None and result is not None and re.search(until, line):
                return line
        fail("no answer to %r" % command, self.transcript())

    def transcript(self):
        return "\n".join(self.log)

    def close(self):
        try:
            self.proc.stdin.write("-gdb-exit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=30)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            self.proc.kill()

    def children(self, var):
        out = self.send("-var-list-children --all-values %s" % var)
        kids = {}
        for m in MI_CHILD.finditer(out):
            name, exp, numchild, value, typ, hint, has_more = m.groups()
            kids[exp] = dict(name=name, numchild=int(numchild), value=value or "", type=typ,
                             has_more=has_more == "1")
        return kids


def mi(source_dir, program):
    work = tempfile.mkdtemp(prefix="tg-mi-")
    s = MI(program, work)
    try:
        # VS Code's setupCommands (.vscode/launch.json), then what the extension sends itself.
        s.send("-gdb-set target-async on")
        s.send("-enable-pretty-printing")
        s.send('-interpreter-exec console "add-auto-load-safe-path %s"' % source_dir)
        s.send('-interpreter-exec console "source %s/scripts/gdb/tapegrad.py"' % source_dir)
        s.send("-file-exec-and-symbols %s" % program)
        s.send("-exec-arguments --out %s/out" % work)
        s.send("-break-insert -f tg::batch_norm")
        s.send("-exec-run", until=r"^\*stopped")
        t = s.transcript()
        check('reason="breakpoint-hit"' in t and "tg::batch_norm" in t,
              "gdb did not stop at tg::batch_norm", t)

        # The Variables view: x, the tensor BatchNorm normalises. gdb's MI gives every object
        # with children the value "{...}" (varobj.c); the one-line summary is what evaluating
        # it prints (a hover, the Debug Console), before its children.
        out = s.send("-var-create x * x")
        t = s.transcript()
        check('dynamic="1"' in out and 'has_more="1"' in out,
              "x is not expandable (no dynamic children): %s" % out, t)
        out = s.send("-data-evaluate-expression *&x")  # x is a reference: its object
        value = re.search(r'value="(Tensor .*?) = \{', out)
        check(value and value.group(1).startswith("Tensor [8, 5] float64, requires_grad, from %")
              and "linear" in value.group(1) and "\\n" not in value.group(1),
              "evaluating x does not start with the one-line summary 'Tensor [8, 5] float64, "
              "requires_grad, from %N = linear': " + out[:300], s.transcript())
        kids = s.children("x")
        t = s.transcript()
        for name in ("shape", "dtype", "requires_grad", "recorded", "values"):
            check(name in kids, "x has no child %r (children: %s)" % (name, list(kids)), t)
        check(kids["shape"]["value"] == '\\"[8, 5]\\"' and kids["shape"]["numchild"] == 0,
              "x.shape is not the text \"[8, 5]\": %s" % kids["shape"], t)
        check(kids["dtype"]["value"] == '\\"float64\\"', "x.dtype is not \"float64\": %s" %
              kids["dtype"], t)
        check(kids["values"]["numchild"] == 40, "x.values does not have the 40 elements: %s" %
              kids["values"], t)
        check(kids["recorded"]["value"].startswith('\\"%') and "linear" in
              kids["recorded"]["value"], "x.recorded does not name the op: %s" %
              kids["recorded"], t)
        # Second level: the elements.
        elems = s.children(kids["values"]["name"])
        check(len(elems) == 40 and all(re.fullmatch(r"-?[0-9.e+-]+", e["value"]) for e in
                                        elems.values()),
              "x.values' children are not 40 numbers: %s" % list(elems.items())[:3],
              s.transcript())

        # main's frame: the model, two levels down to BatchNorm1d's running_mean.
        frames = s.send("-stack-list-frames")
        level = re.search(r'frame=\{level="(\d+)",[^}]*func="main"', frames)
        check(level, "no frame of main in the stack: %s" % frames, s.transcript())
        s.send("-stack-select-frame %s" % level.group(1))
        out = s.send("-var-create model * model")
        check('dynamic="1"' in out and 'has_more="1"' in out,
              "model is not expandable: %s" % out, s.transcript())
        layers = s.children("model")
        check(list(layers)[:4] == ["0", "1", "2", "3"],
              "model's children are not its layers 0..3: %s" % list(layers), s.transcript())
        bn = layers["1"]
        check(bn["type"] == "tg::nn::BatchNorm1d",
              "model's child 1 is not the BatchNorm1d: %s" % bn, s.transcript())
        tensors = s.children(bn["name"])
        for name in ("weight", "bias", "running_mean", "running_var"):
            check(name in tensors, "BatchNorm1d has no child %r (children: %s)" %
                  (name, list(tensors)), s.transcript())
        rm = tensors["running_mean"]
        check(rm["type"] == "tg::Tensor", "running_mean is not a Tensor: %s" % rm,
              s.transcript())
        rm_kids = s.children(rm["name"])
        check(rm_kids.get("shape", {}).get("value") == '\\"[5]\\"' and
              rm_kids.get("name", {}).get("value") == '\\"1.running_mean\\"' and
              rm_kids.get("values", {}).get("numchild") == 5,
              "running_mean does not expand to name 1.running_mean, shape [5] and 5 values: %s"
              % rm_kids, s.transcript())
        print("mi: x (%s) expands to %s; model -> 1 (BatchNorm1d) -> running_mean -> %s" %
              (value.group(1), ", ".join(kids), ", ".join(rm_kids)))
    finally:
        s.close()
        shutil.rmtree(work, ignore_errors=True)


# ---- lldb ------------------------------------------------------------------------------------


def lldb_env():
    env = dict(ENV)
    # Debian 12's lldb 14 looks for its Python module in a directory that does not exist.
    for d in ("/usr/lib/llvm-14/lib/python3.11/dist-packages",):
        if os.path.isdir(os.path.join(d, "lldb")):
            env["PYTHONPATH"] = d + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def lldb(source_dir, program):
    work = tempfile.mkdtemp(prefix="tg-lldb-")
    script = os.path.join(work, "session.lldb")
    with open(script, "w") as f:
        f.write("""command source -s 1 {src}/scripts/lldb/lldbinit
breakpoint set -n tg::batch_norm
process launch -- --out {work}/out
frame variable x
frame variable x.shape x.values[0] x.values[39]
script lldb.thread.SetSelectedFrame([f.GetFrameID() for f in lldb.thread if f.GetFunctionName() == "main"][0])
frame variable -D 1 model
frame variable -D 1 model.1
frame variable model.1.running_mean
process kill
""".format(src=source_dir, work=work))
    try:
        proc = subprocess.run(["lldb", "-b", "-x", "-s", script, program], cwd=work,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=lldb_env(), timeout=300)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = proc.stdout
    check("stop reason = breakpoint" in out and "tg::batch_norm" in out,
          "lldb did not stop at tg::batch_norm", out)
    check(re.search(r"\(const tg::Tensor &\) x = 0x[0-9a-f]+ Tensor \[8, 5\] float64, "
                    r"requires_grad, made by an op on tape #\d+:? \{", out),
          "lldb does not summarise x as 'Tensor [8, 5] float64, requires_grad, ...' with "
          "children", out)
    check(re.search(r'shape = "\[8, 5\]"', out), "x's shape child is not \"[8, 5]\"", out)
    check(re.search(r"\(double\) x\.values\[0\] = -?[0-9.e+-]+", out) and
          re.search(r"\(double\) x\.values\[39\] = -?[0-9.e+-]+", out),
          "x's values are not element children x.values[0] .. [39]", out)
    check(re.search(r"model = Sequential \(4 modules\) \{", out),
          "model is not 'Sequential (4 modules)' with children", out)
    check(re.search(r"\[?1\]? = BatchNorm1d\(5, eps=1e-05, momentum=0\.1", out),
          "model has no child 1 = BatchNorm1d(5, ...)", out)
    check(re.search(r"running_mean = Tensor '[\w.]*running_mean' \[5\] float64, leaf", out),
          "BatchNorm1d has no child running_mean = Tensor [5]", out)
    check(re.search(r"model\.1\.running_mean = Tensor '[\w.]*running_mean' \[5\] float64, "
                    r"leaf \{(.|\n)*values = [({]\[0\] = 0,? ", out),
          "model.1.running_mean does not expand to its values", out)
    print("lldb: x, model.1 and model.1.running_mean shown with their children")


# ---- gdb -ix gdbinit from elsewhere, and an installed tapegrad -------------------------------


def outside(source_dir, fixture):
    work = tempfile.mkdtemp(prefix="tg-outside-")
    try:
        # A build directory outside the checkout: the program, copied there.
        prog = os.path.join(work, "build", "gdb_fixture")
        os.makedirs(os.path.dirname(prog))
        shutil.copy2(fixture, prog)
        elsewhere = os.path.join(work, "elsewhere")
        os.makedirs(elsewhere)
        proc = subprocess.run(
            ["gdb", "-nx", "-batch", "-ix", os.path.join(source_dir, "scripts", "gdb", "gdbinit"),
             "-ex", "break inspect_here", "-ex", "run", "-ex", "up", "-ex", "print x",
             "-ex", "print model", prog], cwd=elsewhere, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env=ENV, timeout=300)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = proc.stdout
    check("No such file" not in out, "gdbinit did not find its files from elsewhere", out)
    check("declined" not in out, "gdb declined auto-loading for a build directory outside "
          "the checkout", out)
    check("Tensor 'x' [2, 3] float32, requires_grad, leaf" in out and
          "Sequential(\n  (0): Conv2d(1, 2, kernel_size=(3, 3)" in out,
          "the printers did not print x and the model", out)
    print("outside: gdb -ix <checkout>/scripts/gdb/gdbinit from another directory: printers "
          "loaded, no auto-load warning")


def installed(prefix, program):
    gdbinit = os.path.join(prefix, "share", "tapegrad", "gdb", "gdbinit")
    check(os.path.exists(gdbinit), "the install has no %s" % gdbinit)
    work = tempfile.mkdtemp(prefix="tg-installed-")
    try:
        proc = subprocess.run(
            ["gdb", "-nx", "-batch", "-ix", gdbinit, "-ex", "break look_here", "-ex", "run",
             "-ex", "up", "-ex", "print t", "-ex", "print model", "-ex", "print sgd",
             "-ex", "tg-stats t", program], cwd=work, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env=ENV, timeout=300)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = proc.stdout
    check("Tensor 't' [2, 3] float32, requires_grad, leaf\n  [[1., 2., 3.],\n   [4., 5., 6.]]"
          in out, "the installed printers did not print the Tensor t", out)
    check("Sequential(\n  (0): Linear(in_features=3, out_features=4, bias=True)\n"
          "  (1): BatchNorm1d(4, eps=1e-05, momentum=0.1, affine=True, "
          "track_running_stats=True)\n)" in out,
          "the installed printers did not print the model", out)
    check("SGD(lr=0.1, momentum=0.9, dampening=0, weight_decay=0, nesterov=False), "
          "4 parameters" in out, "the installed printers did not print the optimiser", out)
    check("mean 3.5  std 1.70783  min 1  max 6" in out, "tg-stats did not run", out)
    check("shared_ptr" not in out and "incomplete type" not in out and "RTTI" not in out,
          "raw library internals in the output", out)
    print("installed: a Debug consumer prints its Tensor, model and optimiser readably")


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("mi", "lldb", "outside", "installed"):
        sys.exit(__doc__)
    {"mi": mi, "lldb": lldb, "outside": outside, "installed": installed}[sys.argv[1]](
        os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3]))

#!/usr/bin/python3
"""The suite on a machine without the optional tools (CTest entry `missing_tools`).

    check_missing_tools.py CTEST BUILD_DIR

Runs the already-built CTest suite of BUILD_DIR again (no build: ctest only) with
  - `import torch` failing: PYTHONPATH starts with a folder whose torch.py raises
    ModuleNotFoundError (PyTorch is the torch group's, which no test command installs);
  - mpirun, mpiexec, chromium and gdb absent: PATH is a folder of links to everything on PATH
    but those (the mpi, browser and debug groups');
and checks that every test passes, or is skipped (exit 77) with a message that names the
setup group installing what it needs (`bash scripts/setup.sh GROUP`). Left out: this entry
(label `sweep`; the inner run also sets TAPEGRAD_SWEEP_INNER, on which this script stops at
once, so it cannot recurse) and unit_f32/unit_f64, the doctest binaries, which start no
program and import nothing. CTest runs it alone (RUN_SERIAL): the inner run writes where the
outer one's tests write."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HIDDEN = ("mpirun", "mpiexec", "mpirun.openmpi", "mpiexec.openmpi", "orterun", "chromium",
          "chromium-browser", "gdb")


def groups():
    with open(os.path.join(REPO, "scripts", "setup.sh")) as f:
        m = re.search(r"^GROUP_ORDER=\(([^)]*)\)", f.read(), re.M)
    return set(m.group(1).split())


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    if os.environ.get("TAPEGRAD_SWEEP_INNER"):
        print("missing_tools: inside its own inner run; not recursing")
        return
    ctest, build = sys.argv[1], os.path.abspath(sys.argv[2])
    work = tempfile.mkdtemp(prefix="tapegrad_sweep_")
    try:
        fake_py, fake_bin = os.path.join(work, "py"), os.path.join(work, "bin")
        os.makedirs(fake_py)
        os.makedirs(fake_bin)
        with open(os.path.join(fake_py, "torch.py"), "w") as f:
            f.write("raise ModuleNotFoundError(\"No module named 'torch' (faked absent by "
                    "tests/check_missing_tools.py)\", name='torch')\n")
        for d in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep):
            if not os.path.isdir(d):
                continue
            for name in os.listdir(d):
                link, target = os.path.join(fake_bin, name), os.path.join(d, name)
                if name in HIDDEN or os.path.lexists(link) or not os.access(target, os.X_OK):
                    continue
                os.symlink(target, link)
        env = dict(os.environ, PATH=fake_bin, TAPEGRAD_SWEEP_INNER="1",
                   PYTHONPATH=os.pathsep.join(
                       p for p in (fake_py, os.environ.get("PYTHONPATH")) if p))
        # The fakes work, or this test proves nothing.
        probe = subprocess.run(["/usr/bin/python3", "-c", "import torch"], env=env,
                               capture_output=True, text=True)
        if probe.returncode == 0 or "faked absent" not in probe.stderr:
            sys.exit("missing_tools: the fake torch did not take effect:\n" + probe.stderr)
        for name in HIDDEN:
            if shutil.which(name, path=env["PATH"]):
                sys.exit("missing_tools: %s is still on the faked PATH" % name)

        junit = os.path.join(work, "junit.xml")
        cmd = [ctest, "--test-dir", build, "-LE", "sweep", "-E", "^unit_f(32|64)$",
               "-j", str(os.cpu_count() or 2), "--output-junit", junit, "--timeout", "600"]
        print("$ " + " ".join(cmd), flush=True)
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
        print(proc.stdout)
        if not os.path.exists(junit):
            sys.exit("missing_tools: ctest wrote no results (exit %d)" % proc.returncode)
        known, bad, ran, skipped = groups(), [], 0, 0
        for case in ET.parse(junit).getroot().iter("testcase"):
            name, status = case.get("name"), case.get("status")
            out = "".join(e.text or "" for e in case.iter("system-out"))
            if case.find("skipped") is not None or status in ("notrun", "skipped"):
                named = set(re.findall(r"scripts/setup\.sh ((?:[a-z]+ ?)+)", out))
                named = {g for gs in named for g in gs.split()}
                if named & known:
                    skipped += 1
                    print("  ok   %s: skipped, names the group %s" % (name, " ".join(sorted(named & known))))
                else:
                    bad.append("%s was skipped without naming the setup group that installs "
                               "what it needs (bash scripts/setup.sh GROUP); it printed:\n%s" %
                               (name, out[-2000:]))
            elif case.find("failure") is not None or status == "fail":
                bad.append("%s failed without torch, mpirun, chromium and gdb; it printed:\n%s"
                           % (name, out[-3000:]))
            else:
                ran += 1
        if ran + skipped == 0 and not bad:
            bad.append("ctest ran no tests (exit %d)" % proc.returncode)
        print("missing_tools: %d passed, %d skipped naming their group, %d not right"
              % (ran, skipped, len(bad)))
        if bad:
            sys.exit("missing_tools: FAILED:\n" + "\n".join(bad))
        if proc.returncode != 0:
            sys.exit("missing_tools: ctest exited %d" % proc.returncode)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

# Commands of the printer test (gdb_tests.py printers): stop in the fixture, print known values.
set pagination off
set width 0
break inspect_here
run
up
echo ==== tensor with a grad\n
print x
echo ==== tensor without a grad, undefined tensor, a non-leaf\n
print w
print undefined
print sq
echo ==== arrays: double, int64, float truncated, NaN and Inf\n
print d
print ints
print big
print with_nan
echo ==== tape, one entry, modules, std::optional\n
print tape
print tape.entries_[1]
print model
print cumulative
print cumulative.options.momentum
print ((tg::nn::BatchNorm2d&)*model.children_[1].second).options.momentum
echo ==== xmethods\n
print x.grad()
print tape.size()
print big.operator()(1, 2, 3, 9)
echo ==== commands\n
tg-at big 1 2 3 -1
tg-at x 0 1
tg-at ints -1 -1
tg-tape
tg-stats x
tg-stats with_nan
tg-stats x.grad()
tg-hist big 4
echo ==== an optimiser; with tg-structure on (as under MI): one-line values and children\n
print sgd
set tg-structure on
print w
print cumulative
set tg-structure auto
echo ==== a tensor without a grad: a gdb error, no C++ exception\n
python
try:
    gdb.execute("print w.grad()")
except gdb.error as err:
    print("gdb error: %s" % err)
end

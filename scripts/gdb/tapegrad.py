# tapegrad.py — gdb support for tapegrad: pretty-printers, xmethods and commands.
#
# Loaded by scripts/gdb/gdbinit (`gdb -ix scripts/gdb/gdbinit ...`), automatically by the
# project's binaries (their .debug_gdb_scripts section sources this file, once the repository
# is in gdb's auto-load safe-path), or by hand: `source scripts/gdb/tapegrad.py`.
# docs/debugging.md is the walkthrough.
#
# Everything here reads the inferior's memory; nothing calls a function of the program (a call
# that throws would leave gdb stopped inside std::terminate).
#
#   print t            tg::Tensor: name, shape, dtype, requires_grad, leaf or the op that made
#                      it, the first values (NumPy-style, truncated), the grad if it has one
#   print a            xt::xarray / xt::xtensor: shape and values, truncated like NumPy
#   print tape         tg::Tape: its entries as "%5 = batch_norm(%4[64, 16, 10, 10], ...)"
#   print model        tg::nn::Module: PyTorch's repr, "Sequential(\n  (0): Conv2d(1, 6, ...".
#   print a(0, 1, 2)   one element (an xmethod: no call into the program)
#   print t.grad()     the grad (xmethod; "no gradient" is a gdb error, not a C++ exception)
#   tg-at a 0 1 2      the same element, also for a Tensor
#   tg-view x N C L    the values at a raw pointer (a kernel's `const real* x`) as [N, C, L]
#   tg-tape [tape]     the thread's active tape (or the given one)
#   tg-break-backward batch_norm   stop the tape's reverse loop before that op's backward
#   tg-stats x         mean, std, min, max, NaN/Inf count of a Tensor or array
#   tg-hist x [bins]   a histogram in the terminal
#   tg-advance TEXT    run to the next line of this source file containing TEXT
#   tg-advance FILE:TEXT           run to the first line of FILE containing TEXT
#   $tg_data(t)        the address of t's first value: watch -l $tg_data(running_mean)[0]
#   set tg-edgeitems 3 / set tg-threshold 16 / set tg-precision 4: how much is printed
#
# Stopped on the body of the tape's reverse loop (tape_backward), gdb also prints the entry
# whose backward runs next ("Tape::backward, next: %13 = linear(...)").
import math
import os
import re
import struct

import gdb
import gdb.printing
import gdb.xmethod

_HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


class _IntSetting(gdb.Parameter):
    """An integer setting of tapegrad's printers."""

    def __init__(self, name, default, doc):
        self.set_doc = doc
        self.show_doc = doc
        self.__doc__ = doc
        super().__init__(name, gdb.COMMAND_DATA, gdb.PARAM_ZUINTEGER)
        self.value = default

    def get_set_string(self):
        return ""

    def get_show_string(self, svalue):
        return svalue


_EDGEITEMS = _IntSetting("tg-edgeitems", 3,
                         "Values shown at each end of an axis of a truncated tensor or array.")
_THRESHOLD = _IntSetting("tg-threshold", 16,
                         "Tensors and arrays with more values than this are printed truncated.")
_PRECISION = _IntSetting("tg-precision", 4, "Digits after the point of printed values.")


class _StructureSetting(gdb.Parameter):
    """Whether tapegrad's printers give their objects children (shape, values, grad, a layer's
parameters and buffers, a model's layers, a tape's entries) with a one-line summary, as an IDE
needs (VS Code drives gdb through its MI interpreter and expands a value by its children), or
print the whole object as text, as `print` at the (gdb) prompt shows it. auto: children under
the MI interpreter (`gdb --interpreter=mi2`, what VS Code starts), text otherwise."""

    set_doc = "Set whether tapegrad's printers show children (on), text (off) or decide (auto)."
    show_doc = "Show whether tapegrad's printers show children."

    def __init__(self):
        super().__init__("tg-structure", gdb.COMMAND_DATA, gdb.PARAM_AUTO_BOOLEAN)
        self.value = None  # auto

    def get_set_string(self):
        return ""

    def get_show_string(self, svalue):
        return svalue


_STRUCTURE = _StructureSetting()


def _under_mi():
    """True when this gdb runs the MI interpreter (its command line says so: Linux only)."""
    try:
        with open("/proc/self/cmdline", "rb") as f:
            argv = f.read().decode("utf-8", "replace").split("\0")
    except OSError:
        return False
    for k, a in enumerate(argv):
        if a.startswith(("--interpreter=mi", "-interpreter=mi", "-i=mi")):
            return True
        if a in ("--interpreter", "-interpreter", "-i") and k + 1 < len(argv) and \
                argv[k + 1].startswith("mi"):
            return True
    return False


_MI = _under_mi()


def structured():
    """True when printers give children (see tg-structure)."""
    v = _STRUCTURE.value
    return _MI if v is None else bool(v)

# ---------------------------------------------------------------------------------------------
# libstdc++ layouts, read directly
# ---------------------------------------------------------------------------------------------


def _deref(val):
    """The object a value, pointer or reference denotes."""
    t = val.type.strip_typedefs()
    while t.code in (gdb.TYPE_CODE_REF, gdb.TYPE_CODE_RVALUE_REF, gdb.TYPE_CODE_PTR):
        val = val.referenced_value() if t.code != gdb.TYPE_CODE_PTR else val.dereference()
        t = val.type.strip_typedefs()
    return val


def _std_string(val):
    n = int(val["_M_string_length"])
    if n == 0:
        return ""
    data = bytes(gdb.selected_inferior().read_memory(val["_M_dataplus"]["_M_p"], min(n, 4096)))
    return data.decode("utf-8", "replace")


def _vector(val):
    """The elements of a std::vector, as gdb.Values."""
    start = val["_M_impl"]["_M_start"]
    n = int(val["_M_impl"]["_M_finish"] - start)
    return [(start + i).dereference() for i in range(n)]


def _shared_get(val):
    """The raw pointer of a std::shared_ptr (0 when empty)."""
    return val["_M_ptr"]


def _optional(val):
    """(engaged, value) of a std::optional."""
    payload = val["_M_payload"]
    if not bool(payload["_M_engaged"]):
        return False, None
    return True, payload["_M_payload"]["_M_value"]


def _cstring(ptr):
    try:
        return ptr.string(length=-1) if int(ptr) != 0 else "?"
    except gdb.error:
        return "?"


# ---------------------------------------------------------------------------------------------
# xt::xarray / xt::xtensor
# ---------------------------------------------------------------------------------------------


def _is_xcontainer(t):
    name = t.strip_typedefs().tag or t.strip_typedefs().name or ""
    return name.startswith("xt::xarray_container<") or name.startswith("xt::xtensor_container<")


def _seq(val):
    """A shape or strides container (xt::svector or std::array) as a list of ints."""
    t = val.type.strip_typedefs()
    names = [f.name for f in t.fields()]
    if "m_begin" in names:
        begin = val["m_begin"]
        n = int(val["m_end"] - begin)
        return [int((begin + i).dereference()) for i in range(n)]
    if "_M_elems" in names:
        elems = val["_M_elems"]
        lo, hi = elems.type.strip_typedefs().range()
        return [int(elems[i]) for i in range(lo, hi + 1)]
    raise gdb.GdbError("tapegrad: unknown shape container " + str(t))


class XArray:
    """An xt::xarray_container / xtensor_container read from the inferior (or, with
    XArray.raw, `count` values at a pointer seen with a shape)."""

    def __init__(self, val):
        self.val = _deref(val)
        self.shape = _seq(self.val["m_shape"])
        self.strides = _seq(self.val["m_strides"])
        storage = self.val["m_storage"]
        self.begin = storage["p_begin"]
        self.elem = self.begin.type.strip_typedefs().target().strip_typedefs()
        self.stored = int(storage["p_end"] - self.begin) if int(self.begin) else 0
        self._set_kind()

    @classmethod
    def raw(cls, pointer, shape):
        """The row-major array of `shape` at `pointer` (a kernel's `const real* x`)."""
        self = cls.__new__(cls)
        self.val = pointer
        self.begin = pointer
        self.elem = pointer.type.strip_typedefs().target().strip_typedefs()
        self.shape = list(shape)
        self.strides, acc = [], 1
        for d in reversed(self.shape):
            self.strides.insert(0, acc)
            acc *= d
        self.stored = acc if int(pointer) else 0
        self._set_kind()
        return self

    def _set_kind(self):
        self.size = self.elem.sizeof
        code = self.elem.code
        if code == gdb.TYPE_CODE_FLT:
            self.kind = "float"
            self.fmt = {4: "f", 8: "d"}.get(self.size)
        elif code in (gdb.TYPE_CODE_INT, gdb.TYPE_CODE_CHAR, gdb.TYPE_CODE_BOOL):
            self.kind = "int" if code != gdb.TYPE_CODE_BOOL else "bool"
            signed = code != gdb.TYPE_CODE_BOOL and _is_signed(self.elem)
            self.fmt = {1: "b", 2: "h", 4: "i", 8: "q"}.get(self.size)
            if self.fmt and not signed:
                self.fmt = self.fmt.upper()
        else:
            self.kind, self.fmt = "other", None
        if self.fmt is None:
            raise gdb.GdbError("tapegrad: arrays of " + str(self.elem) + " are not supported")

    @property
    def numel(self):
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def dtype(self):
        if self.kind == "float":
            return "float32" if self.size == 4 else "float64"
        if self.kind == "bool":
            return "bool"
        return ("int" if self.fmt.islower() else "uint") + str(8 * self.size)

    def _read(self, first, count):
        raw = gdb.selected_inferior().read_memory(int(self.begin) + first * self.size,
                                                  count * self.size)
        return list(struct.unpack("<%d%s" % (count, self.fmt), bytes(raw)))

    def offset(self, index):
        if len(index) != len(self.shape):
            raise gdb.GdbError("tapegrad: %d indices for an array of shape %s" %
                               (len(index), shape_str(self.shape)))
        off = 0
        for axis, (i, d, s) in enumerate(zip(index, self.shape, self.strides)):
            if i < 0:
                i += d
            if not 0 <= i < d:
                raise gdb.GdbError("tapegrad: index %d is out of range for axis %d of size %d "
                                   "(shape %s)" % (index[axis], axis, d, shape_str(self.shape)))
            off += i * s
        return off

    def at(self, index):
        off = self.offset(index)
        if off >= self.stored:
            raise gdb.GdbError("tapegrad: the array has no storage for that element")
        return self._read(off, 1)[0]

    def values(self, limit=1 << 26):
        """Every value in row-major order (the storage, when contiguous row-major)."""
        n = self.numel
        if n > limit:
            raise gdb.GdbError("tapegrad: %d values is too many to read" % n)
        if n == 0 or self.stored == 0:
            return []
        row_major, acc = [], 1
        for d in reversed(self.shape):
            row_major.insert(0, acc if d != 1 else 0)
            acc *= d
        if [s if d != 1 else 0 for s, d in zip(self.strides, self.shape)] == row_major \
                and self.stored >= n:
            out, chunk = [], 1 << 20
            for first in range(0, n, chunk):
                out.extend(self._read(first, min(chunk, n - first)))
            return out
        return [self.at(ix) for ix in _all_indices(self.shape)]


def _is_signed(t):
    try:
        return t.is_signed
    except AttributeError:  # gdb < 12
        return not str(t).startswith("unsigned") and str(t) not in ("bool", "char8_t")


def _all_indices(shape):
    if not shape:
        yield ()
        return
    for i in range(shape[0]):
        for rest in _all_indices(shape[1:]):
            yield (i,) + rest


def shape_str(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"


# ---- NumPy-style text -----------------------------------------------------------------------


def _shown(length, head, tail):
    """The indices shown along an axis of `length`: all, or `head` first + None + `tail` last."""
    if length <= head + tail or (head == 0 and tail == 0):
        return list(range(length))
    return list(range(head)) + [None] + list(range(length - tail, length))


def _format_numbers(values, kind, precision):
    """The texts of `values`, one format for all (as NumPy/PyTorch), right-aligned."""
    if kind in ("int", "bool"):
        texts = [str(bool(v)) if kind == "bool" else str(v) for v in values]
    else:
        finite = [abs(v) for v in values if math.isfinite(v)]
        integral = finite and all(v == math.floor(v) for v in finite) and max(finite) < 1e8
        nonzero = [v for v in finite if v != 0]
        sci = nonzero and (max(nonzero) >= 1e4 or min(nonzero) < 10.0**-precision)

        def one(v):
            if math.isnan(v):
                return "nan"
            if math.isinf(v):
                return "inf" if v > 0 else "-inf"
            if integral:
                return "%.0f." % v
            if sci:
                return "%.*e" % (precision, v)
            return "%.*f" % (precision, v)

        texts = [one(v) for v in values]
    width = max((len(s) for s in texts), default=0)
    return [s.rjust(width) for s in texts]


def format_array(arr, indent=0):
    """NumPy-style text of an XArray. Above tg-threshold values it is truncated: the last axis
    shows tg-edgeitems values at each end, the one before it the first tg-edgeitems rows, the
    outer axes their first entry, each cut marked by "..."."""
    shape = arr.shape
    precision = int(_PRECISION.value)
    if arr.numel == 0:
        return "[]" if shape else "[]"
    if not shape:
        return _format_numbers([arr.at(())], arr.kind, precision)[0]
    e = max(1, int(_EDGEITEMS.value))
    full = arr.numel <= int(_THRESHOLD.value)
    nd = len(shape)
    axes = []
    for axis, d in enumerate(shape):
        if full:
            axes.append(list(range(d)))
        elif axis == nd - 1:
            axes.append(_shown(d, e, e))
        elif axis == nd - 2:
            axes.append(_shown(d, e, 0))
        else:
            axes.append(_shown(d, 1, 0))
    # Read the shown values (one read per value: a handful), format them together.
    index_list = [ix for ix in _product(axes) if None not in ix]
    if full and arr.numel <= 4096:
        flat = arr.values()
        vals = {ix: flat[k] for k, ix in enumerate(_all_indices(shape))}
    else:
        vals = {ix: arr.at(ix) for ix in index_list}
    texts = dict(zip(index_list, _format_numbers([vals[ix] for ix in index_list], arr.kind,
                                                  precision)))

    def render(prefix, axis, col):
        if axis == nd - 1:
            parts = ["..." if i is None else texts[prefix + (i,)] for i in axes[axis]]
            return "[" + ", ".join(parts) + "]"
        sep = ",\n" + " " * (col + 1)
        parts = ["..." if i is None else render(prefix + (i,), axis + 1, col + 1)
                 for i in axes[axis]]
        return "[" + sep.join(parts) + "]"

    text = render((), 0, 0)
    return text.replace("\n", "\n" + " " * indent)


def _product(axes):
    if not axes:
        yield ()
        return
    for i in axes[0]:
        for rest in _product(axes[1:]):
            yield (i,) + rest


class XArrayPrinter:
    def __init__(self, val):
        self.val = val

    def to_string(self):
        try:
            arr = XArray(self.val)
        except (gdb.error, gdb.MemoryError) as err:
            return "<xt array, unreadable: %s>" % err
        if arr.stored == 0 and arr.numel != 0 and arr.shape:
            return "%s %s (no storage)" % (arr.dtype, shape_str(arr.shape))
        head = "%s %s" % (arr.dtype, shape_str(arr.shape))
        text = format_array(arr, indent=2)
        # One line stays on the header's line; a nested array starts on its own line.
        return head + (" " + text if "\n" not in text else "\n  " + text)


# ---------------------------------------------------------------------------------------------
# tg::Tensor, tg::Node
# ---------------------------------------------------------------------------------------------


def _node_of_tensor(val):
    """The tg::Node* of a tg::Tensor value (0 if undefined)."""
    return _shared_get(_deref(val)["node_"])


def active_tape():
    """The thread's active tg::Tape* as a gdb.Value, or None."""
    try:  # the top of the thread's scope stack (tape.cpp): a Tape, or a NoGradGuard (null)
        top = gdb.parse_and_eval("'tg::(anonymous namespace)::top_scope'")
        if int(top) == 0:
            return None
        tape = top.dereference()["tape"]
        return tape if int(tape) != 0 else None
    except gdb.error:
        pass
    try:  # before the scope stack: a plain pointer
        tape = gdb.parse_and_eval("'tg::(anonymous namespace)::active_tape'")
        return tape if int(tape) != 0 else None
    except gdb.error:
        return None


class TapeView:
    """A tg::Tape read from the inferior, with the labels Tape::print uses."""

    def __init__(self, tape):
        self.tape = _deref(tape)
        self.entries = _vector(self.tape["entries_"])
        self.produced_by = {}
        for i, e in enumerate(self.entries):
            self.produced_by[int(_node_of_tensor(e["output"]))] = i
        self.leaf_index = {}
        for e in self.entries:
            for t in _vector(e["inputs"]):
                n = int(_node_of_tensor(t))
                if n not in self.produced_by and n not in self.leaf_index:
                    self.leaf_index[n] = len(self.leaf_index)

    def label(self, tensor):
        node_ptr = _node_of_tensor(tensor)
        n = int(node_ptr)
        if n == 0:
            return "undefined"
        name = _std_string(node_ptr.dereference()["name"])
        if name:
            return name
        if n in self.produced_by:
            return "%" + str(self.produced_by[n])
        return "leaf" + str(self.leaf_index.get(n, "?"))

    def entry_line(self, i):
        e = self.entries[i]
        args = ", ".join(self.label(t) + shape_str(tensor_shape(t)) for t in _vector(e["inputs"]))
        line = "%%%d = %s(%s) -> %s" % (i, _cstring(e["op"]), args,
                                         shape_str(tensor_shape(e["output"])))
        out_name = _std_string(_node_of_tensor(e["output"]).dereference()["name"])
        if out_name:
            line += "  '%s'" % out_name
        return line

    def index_of_entry(self, entry):
        begin = self.tape["entries_"]["_M_impl"]["_M_start"]
        addr = int(entry.address) if entry.address is not None else -1
        size = begin.type.strip_typedefs().target().sizeof
        k = (addr - int(begin)) // size if size else -1
        if 0 <= k < len(self.entries) and int(begin) + k * size == addr:
            return k
        return None

    def text(self):
        lines = ["Tape with %d entries" % len(self.entries)]
        lines += ["  " + self.entry_line(i) for i in range(len(self.entries))]
        return "\n".join(lines)


def tensor_shape(tensor):
    n = _node_of_tensor(tensor)
    if int(n) == 0:
        return []
    return _seq(n.dereference()["value"]["m_shape"])


def _producer(node_ptr):
    """'%4 = batch_norm' for a node produced on the active tape, else None."""
    tape = active_tape()
    if tape is None:
        return None
    try:
        view = TapeView(tape)
    except gdb.error:
        return None
    i = view.produced_by.get(int(node_ptr))
    if i is None:
        return None
    return "%%%d = %s" % (i, _cstring(view.entries[i]["op"]))


def format_node(node, indent=2):
    """The text of a tg::Node (what a Tensor shows): node_summary's line, values, grad."""
    value = XArray(node["value"])
    head = node_summary(node)
    pad = " " * indent
    lines = [head, pad + format_array(value, indent=indent)]
    if bool(node["has_grad"]):
        grad = XArray(node["grad"])
        label = "grad %s: " % shape_str(grad.shape)
        lines.append(pad + label + format_array(grad, indent=indent + len(label)))
    return "\n".join(lines)


class TensorPrinter:
    def __init__(self, val):
        self.val = val

    def to_string(self):
        try:
            node = _node_of_tensor(self.val)
            if int(node) == 0:
                return "Tensor(undefined)"
            return format_node(node.dereference())
        except (gdb.error, gdb.MemoryError) as err:
            return "<tg::Tensor, unreadable: %s>" % err


class NodePrinter:
    def __init__(self, val):
        self.val = val

    def to_string(self):
        try:
            return format_node(self.val)
        except (gdb.error, gdb.MemoryError) as err:
            return "<tg::Node, unreadable: %s>" % err


class TapePrinter:
    def __init__(self, val):
        self.val = val

    def to_string(self):
        try:
            view = TapeView(self.val)
            text = view.text()
            return text.replace("Tape with", "Tape #%d with" % int(view.tape["id_"]), 1)
        except (gdb.error, gdb.MemoryError) as err:
            return "<tg::Tape, unreadable: %s>" % err


class TapeEntryPrinter:
    def __init__(self, val):
        self.val = val

    def to_string(self):
        try:
            tape = active_tape()
            if tape is not None:
                view = TapeView(tape)
                i = view.index_of_entry(self.val)
                if i is not None:
                    return "TapeEntry " + view.entry_line(i)
            e = self.val
            args = ", ".join(
                (_std_string(_node_of_tensor(t).dereference()["name"]) or "?") +
                shape_str(tensor_shape(t)) for t in _vector(e["inputs"]))
            return "TapeEntry %s(%s) -> %s" % (_cstring(e["op"]), args,
                                               shape_str(tensor_shape(e["output"])))
        except (gdb.error, gdb.MemoryError) as err:
            return "<tg::TapeEntry, unreadable: %s>" % err


# ---------------------------------------------------------------------------------------------
# tg::nn::Module: PyTorch's repr, as Module::print prints it (the layer's text noted by the library)
# ---------------------------------------------------------------------------------------------


def _py_number(v):
    return "%g" % float(v)


def _py_bool(v):
    return "True" if bool(v) else "False"


def _extra_repr(kind, m):
    """The layer's extra_repr(), as the library noted it (tg::nn::Module::debug_extra_repr_: at
    its registration, its last call or print), read from memory: no code runs, so it works in
    a core file too, and no layer's text is written a second time here."""
    return _std_string(m["debug_extra_repr_"])


def _module_kind(val):
    """(most-derived value, its class name without namespace)."""
    try:
        dyn = val.dynamic_type
        if dyn is not None and dyn.strip_typedefs() != val.type.strip_typedefs():
            val = val.cast(dyn)
    except gdb.error:
        pass
    name = str(val.type.strip_typedefs())
    name = re.sub(r"<.*", "", name).split("::")[-1]
    return val, name


def module_repr(val, indent=0):
    val, kind = _module_kind(_deref(val))
    text = "%s(%s" % (kind, _extra_repr(kind, val))
    children = _vector(val["children_"])
    if children:
        pad = " " * (indent + 2)
        text += "\n"
        for pair in children:
            ptr = _shared_get(pair["second"])
            child = module_repr(ptr.dereference(), indent + 2) if int(ptr) else "None"
            text += "%s(%s): %s\n" % (pad, _std_string(pair["first"]), child)
        text += " " * indent
    return text + ")"


class ModulePrinter:
    def __init__(self, val):
        self.val = val

    def to_string(self):
        try:
            return module_repr(self.val)
        except (gdb.error, gdb.MemoryError) as err:
            return "<tg::nn::Module, unreadable: %s>" % err


class OptionalPrinter:
    """std::optional<T> as its value or std::nullopt."""

    def __init__(self, val):
        self.val = val

    def to_string(self):
        engaged, value = _optional(self.val)
        return str(value) if engaged else "std::nullopt"


# ---------------------------------------------------------------------------------------------
# Structure for IDEs (tg-structure): a one-line summary and children, which an MI client such
# as VS Code shows as an expandable tree. The (gdb) prompt keeps the text printers above.
# ---------------------------------------------------------------------------------------------

_CHILD_VALUES = 100  # a tensor's "values" child: its first values, at most this many


def _text(s):
    """A child holding the text `s`: a `volatile char` array made here (not in the program's
    memory), which lookup() gives _TextPrinter, so MI shows "float32", not 8 chars to open."""
    data = s.encode("utf-8") + b"\0"
    return gdb.Value(data, gdb.lookup_type("char").volatile().array(len(data) - 1))


class _TextPrinter:
    def __init__(self, val):
        self.val = val

    def to_string(self):
        return self.val.string()

    def display_hint(self):
        return "string"


def _is_text(val, t):
    """A char array made by _text: its type, `volatile char [N]`, marks it (a program's own
    arrays are not volatile char; val.address would make gdb copy the array into the
    program, calling its malloc)."""
    return t.code == gdb.TYPE_CODE_ARRAY and str(t.target()) == "volatile char"


def _shape_value(shape):
    """A shape as the text "[8, 5]" (in MI one value to read, not an array to open)."""
    return _text(shape_str(shape))


def _array_children(arr):
    """shape, dtype and the first values (a C array over the program's memory) of an XArray."""
    yield "shape", _shape_value(arr.shape)
    yield "dtype", _text(arr.dtype)
    k = min(arr.numel, arr.stored, _CHILD_VALUES)
    if k > 0:
        first = arr.begin.cast(arr.elem.array(k - 1).pointer()).dereference()
        yield ("values" if k == arr.numel else "values[:%d]" % k), first


def _recorded(node):
    """Where a node was made: "leaf", "%4 = batch_norm", ..."""
    tape_id = int(node["tape_id"])
    if tape_id == 0:
        return "leaf"
    if tape_id == (1 << 64) - 1:
        return "made on a tape since destroyed"
    return _producer(node.address) or "made by an op on tape #%d" % tape_id


def node_summary(node):
    """The first line of format_node: name, shape, dtype, requires_grad, where it was made."""
    value = XArray(node["value"])
    name = _std_string(node["name"])
    head = "Tensor" + (" '%s'" % name if name else "")
    head += " %s %s" % (shape_str(value.shape), value.dtype)
    if bool(node["requires_grad"]):
        head += ", requires_grad"
    made = _recorded(node)
    return head + (", " + made if made == "leaf" or made.startswith("made") else ", from " + made)


def node_children(node):
    if _std_string(node["name"]):
        yield "name", node["name"]
    value = XArray(node["value"])
    children = list(_array_children(value))
    yield children[0]  # shape
    yield children[1]  # dtype
    yield "requires_grad", node["requires_grad"]
    yield "recorded", _text(_recorded(node))
    for child in children[2:]:
        yield child
    if bool(node["has_grad"]):
        yield "grad", node["grad"]


class _Structured:
    """Base of the structured printers: errors become a one-line value and no children."""

    def __init__(self, val):
        self.val = val

    def to_string(self):
        try:
            return self.summary()
        except (gdb.error, gdb.MemoryError) as err:
            return "<%s, unreadable: %s>" % (self.val.type, err)

    def children(self):
        try:
            return list(self.items())
        except (gdb.error, gdb.MemoryError):
            return []


class TensorStructured(_Structured):
    def _node(self):
        return _node_of_tensor(self.val)

    def summary(self):
        node = self._node()
        return "Tensor(undefined)" if int(node) == 0 else node_summary(node.dereference())

    def items(self):
        node = self._node()
        return node_children(node.dereference()) if int(node) else iter(())


class NodeStructured(_Structured):
    def summary(self):
        return node_summary(self.val)

    def items(self):
        return node_children(self.val)


class XArrayStructured(_Structured):
    def display_hint(self):
        return None

    def summary(self):
        arr = XArray(self.val)
        return "%s %s" % (arr.dtype, shape_str(arr.shape))

    def items(self):
        return _array_children(XArray(self.val))


class TapeStructured(_Structured):
    def summary(self):
        view = TapeView(self.val)
        return "Tape #%d with %d entries" % (int(view.tape["id_"]), len(view.entries))

    def items(self):
        view = TapeView(self.val)
        for i, e in enumerate(view.entries):
            yield "%%%d" % i, e


class TapeEntryStructured(_Structured):
    def summary(self):
        return TapeEntryPrinter(self.val).to_string()

    def items(self):
        e = self.val
        yield "op", _text(_cstring(e["op"]))
        for k, t in enumerate(_vector(e["inputs"])):
            yield "inputs[%d]" % k, t
        yield "output", e["output"]


def module_summary(val, kind):
    """One line: "BatchNorm2d(16, eps=1e-05, ...)", a container "Sequential (5 modules)"."""
    n = len(_vector(val["children_"]))
    if n:
        return "%s (%d module%s)" % (kind, n, "" if n == 1 else "s")
    return "%s(%s)" % (kind, _extra_repr(kind, val))


class ModuleStructured(_Structured):
    """A layer: its parameters and buffers by name; a container: its layers by name."""

    def summary(self):
        val, kind = _module_kind(_deref(self.val))
        return module_summary(val, kind)

    def items(self):
        val, _ = _module_kind(_deref(self.val))
        for pair in _vector(val["parameters_"]):
            yield _std_string(pair["first"]), pair["second"]
        for pair in _vector(val["buffers_"]):
            yield _std_string(pair["first"]), pair["second"]
        for pair in _vector(val["children_"]):
            ptr = _shared_get(pair["second"])
            if int(ptr):
                child, _ = _module_kind(ptr.dereference())
                yield _std_string(pair["first"]), child
        yield "training", val["training_"]


def _optimizer_options(val, kind):
    o = val["options_"]
    if kind == "SGD":
        return "lr=%s, momentum=%s, dampening=%s, weight_decay=%s, nesterov=%s" % (
            _py_number(o["lr"]), _py_number(o["momentum"]), _py_number(o["dampening"]),
            _py_number(o["weight_decay"]), _py_bool(o["nesterov"]))
    if kind == "Adam":
        b = o["betas"]
        return "lr=%s, betas=(%s, %s), eps=%s, weight_decay=%s" % (
            _py_number(o["lr"]), _py_number(b["first"]), _py_number(b["second"]),
            _py_number(o["eps"]), _py_number(o["weight_decay"]))
    return ""


class OptimizerPrinter:
    """tg::optim::SGD / Adam: "SGD(lr=0.1, momentum=0.9, ...), 10 parameters"; structured, also
    its options, parameters and per-parameter state as children."""

    def __init__(self, val):
        self.val = val

    def _resolved(self):
        val, kind = _module_kind(_deref(self.val))  # the most-derived class, by name
        return val, kind

    def to_string(self):
        try:
            val, kind = self._resolved()
            n = len(_vector(val["parameters_"]))
            names = [f.name for f in val.type.strip_typedefs().fields()]
            opts = _optimizer_options(val, kind) if "options_" in names else ""
            return "%s(%s), %d parameter%s" % (kind, opts, n, "" if n == 1 else "s")
        except (gdb.error, gdb.MemoryError) as err:
            return "<tg::optim optimizer, unreadable: %s>" % err


class OptimizerStructured(OptimizerPrinter):
    def children(self):
        try:
            val, kind = self._resolved()
            names = [f.name for f in val.type.strip_typedefs().fields()]
            out = []
            if "options_" in names:
                out.append(("options", val["options_"]))
            out.append(("parameters", val["parameters_"]))
            for field in ("states_", "buffers_"):  # Adam's moments, SGD's momentum buffers
                if field in names:
                    out.append(("state", val[field]))
            return out
        except (gdb.error, gdb.MemoryError):
            return []


# ---------------------------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------------------------


def _derives_from(t, base_name):
    t = t.strip_typedefs()
    if t.code != gdb.TYPE_CODE_STRUCT:
        return False
    if t.tag == base_name:
        return True
    for f in t.fields():
        if f.is_base_class and _derives_from(f.type, base_name):
            return True
    return False


def lookup(val):
    t = val.type.strip_typedefs()
    if _is_text(val, t):
        return _TextPrinter(val)
    if t.code != gdb.TYPE_CODE_STRUCT or t.tag is None:
        return None
    tag = t.tag
    tree = structured()
    if tag == "tg::Tensor":
        return TensorStructured(val) if tree else TensorPrinter(val)
    if tag == "tg::Node":
        return NodeStructured(val) if tree else NodePrinter(val)
    if tag == "tg::Tape":
        return TapeStructured(val) if tree else TapePrinter(val)
    if tag == "tg::TapeEntry":
        return TapeEntryStructured(val) if tree else TapeEntryPrinter(val)
    if _is_xcontainer(t):
        return XArrayStructured(val) if tree else XArrayPrinter(val)
    if tag.startswith("std::optional<"):
        return OptionalPrinter(val)
    if tag.startswith("tg::nn::") and _derives_from(t, "tg::nn::Module"):
        return ModuleStructured(val) if tree else ModulePrinter(val)
    if tag.startswith("tg::optim::") and _derives_from(t, "tg::optim::Optimizer"):
        return OptimizerStructured(val) if tree else OptimizerPrinter(val)
    return None


lookup.__name__ = "tapegrad_lookup"


def _put_first(printers):
    printers[:] = [p for p in printers if getattr(p, "__name__", "") != "tapegrad_lookup"]
    printers.insert(0, lookup)


def _on_new_objfile(event):
    _put_first(event.new_objfile.pretty_printers)


def _register():
    # gdb asks each objfile's printers before the global ones, and libstdc++ registers its own
    # (std::optional among them) on its objfile: ours go first in every objfile, so they win.
    _put_first(gdb.pretty_printers)
    for objfile in gdb.objfiles():
        _put_first(objfile.pretty_printers)
    gdb.events.new_objfile.connect(_on_new_objfile)


# ---------------------------------------------------------------------------------------------
# xmethods: a(i, j, ...), t.grad(), t.value(), t.item(), tape.size() evaluated by gdb itself
# ---------------------------------------------------------------------------------------------


def _as_value(number, gdb_type):
    return gdb.Value(number).cast(gdb_type)


class _ArrayCall(gdb.xmethod.XMethodWorker):
    def __init__(self, nargs):
        self.nargs = nargs

    def get_arg_types(self):
        return [gdb.lookup_type("long")] * self.nargs

    def get_result_type(self, obj, *args):
        return XArray(obj).elem

    def __call__(self, obj, *args):
        arr = XArray(obj)
        return _as_value(arr.at(tuple(int(a) for a in args)), arr.elem)


class _ArrayCallMatcher(gdb.xmethod.XMethodMatcher):
    def __init__(self):
        super().__init__("tapegrad xt::xarray operator()")

    def match(self, class_type, method_name):
        if method_name != "operator()" or not _is_xcontainer(class_type):
            return None
        return [_ArrayCall(n) for n in range(0, 9)]


class _TensorMethod(gdb.xmethod.XMethodWorker):
    def __init__(self, name):
        self.name = name

    def get_arg_types(self):
        return None

    def _node(self, obj):
        node = _node_of_tensor(obj)
        if int(node) == 0:
            raise gdb.GdbError("Tensor: use of an undefined (default-constructed) tensor")
        return node.dereference()

    def get_result_type(self, obj):
        node = self._node(obj)
        if self.name in ("grad", "value"):
            return node["value"].type
        if self.name == "item":
            return XArray(node["value"]).elem
        return gdb.lookup_type("bool") if self.name.startswith(("is_", "has_", "req")) \
            else gdb.lookup_type("unsigned long")

    def __call__(self, obj):
        node = self._node(obj)
        if self.name == "value":
            return node["value"]
        if self.name == "grad":
            if not bool(node["has_grad"]):
                name = _std_string(node["name"])
                raise gdb.GdbError(
                    "Tensor::grad: tensor %s%s has no gradient (backward has not reached it; a "
                    "non-leaf keeps its grad only after retain_grad())" %
                    ("'%s' " % name if name else "", shape_str(_seq(node["value"]["m_shape"]))))
            return node["grad"]
        arr = XArray(node["value"])
        if self.name == "item":
            if arr.numel != 1:
                raise gdb.GdbError("Tensor::item: expected a one-element tensor, got shape " +
                                   shape_str(arr.shape))
            return _as_value(arr.values()[0], arr.elem)
        if self.name == "numel":
            return _as_value(arr.numel, gdb.lookup_type("unsigned long"))
        if self.name == "dim":
            return _as_value(len(arr.shape), gdb.lookup_type("unsigned long"))
        if self.name == "is_leaf":
            return _as_value(int(node["tape_id"]) == 0, gdb.lookup_type("bool"))
        if self.name == "has_grad":
            return node["has_grad"]
        if self.name == "requires_grad":
            return node["requires_grad"]
        raise gdb.GdbError("tapegrad: no xmethod " + self.name)


class _TensorMatcher(gdb.xmethod.XMethodMatcher):
    NAMES = ("grad", "value", "item", "numel", "dim", "is_leaf", "has_grad", "requires_grad")

    def __init__(self):
        super().__init__("tapegrad tg::Tensor accessors")

    def match(self, class_type, method_name):
        if class_type.strip_typedefs().tag != "tg::Tensor" or method_name not in self.NAMES:
            return None
        return _TensorMethod(method_name)


class _TapeSize(gdb.xmethod.XMethodWorker):
    def get_arg_types(self):
        return None

    def get_result_type(self, obj):
        return gdb.lookup_type("unsigned long")

    def __call__(self, obj):
        return _as_value(len(_vector(obj["entries_"])), gdb.lookup_type("unsigned long"))


class _TapeMatcher(gdb.xmethod.XMethodMatcher):
    def __init__(self):
        super().__init__("tapegrad tg::Tape::size")

    def match(self, class_type, method_name):
        if class_type.strip_typedefs().tag == "tg::Tape" and method_name == "size":
            return _TapeSize()
        return None


def _register_xmethods():
    existing = {m.name for m in gdb.xmethods}
    for matcher in (_ArrayCallMatcher(), _TensorMatcher(), _TapeMatcher()):
        if matcher.name not in existing:
            gdb.xmethod.register_xmethod_matcher(None, matcher)


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


def _array_of(expr):
    """The XArray an expression denotes: a tg::Tensor (its value), a Node, an xt array, or a
    C array such as `*mean@C` (gdb's @ syntax, for a kernel's raw pointers)."""
    val = gdb.parse_and_eval(expr)
    if val.type.strip_typedefs().code == gdb.TYPE_CODE_ARRAY:
        lo, hi = val.type.strip_typedefs().range()
        elem = val.type.strip_typedefs().target()
        return XArray.raw(val[lo].address.cast(elem.pointer()), [hi - lo + 1])
    val = _deref(val)
    tag = val.type.strip_typedefs().tag or ""
    if tag.startswith("std::vector<"):  # mean, var, invstd in tg::batch_norm: vector<double>
        start = val["_M_impl"]["_M_start"]
        n = int(val["_M_impl"]["_M_finish"] - start)
        return XArray.raw(start, [n])
    if tag == "tg::Tensor":
        node = _node_of_tensor(val)
        if int(node) == 0:
            raise gdb.GdbError("%s is an undefined tensor" % expr)
        return XArray(node.dereference()["value"])
    if tag == "tg::Node":
        return XArray(val["value"])
    if _is_xcontainer(val.type):
        return XArray(val)
    raise gdb.GdbError("%s is a %s, not a tg::Tensor or an xt::xarray/xtensor" % (expr, val.type))


def _split(arg):
    return gdb.string_to_argv(arg)


class AtCommand(gdb.Command):
    """Print one element of a tensor or array: tg-at EXPR I J ...
Indices may be negative (from the end), as in NumPy. Example: tg-at dy 0 0 1 2"""

    def __init__(self):
        super().__init__("tg-at", gdb.COMMAND_DATA, gdb.COMPLETE_EXPRESSION)

    def invoke(self, arg, from_tty):
        argv = _split(arg)
        if not argv:
            raise gdb.GdbError("usage: tg-at EXPR I J ...")
        arr = _array_of(argv[0])
        index = tuple(int(gdb.parse_and_eval(a)) for a in argv[1:])
        value = arr.at(index)
        if arr.kind == "float":  # enough digits to tell any two values of the type apart
            text = "%.*g" % (9 if arr.size == 4 else 17, value)
        else:
            text = str(value)
        gdb.write("%s%s = %s\n" % (argv[0], list(index), text))


class ViewCommand(gdb.Command):
    """Print the values at a pointer as an array of the given shape, NumPy-style:
    tg-view POINTER D0 [D1 ...]
    tg-view EXPR           (a std::vector, C array, tg::Tensor or xt array: its own shape)
A kernel works on raw pointers (const real* x, double* mean): `tg-view x N C L` shows x as
[N, C, L]; `tg-view mean C` the C channel means. Dimensions may be expressions (N, C*L)."""

    def __init__(self):
        super().__init__("tg-view", gdb.COMMAND_DATA, gdb.COMPLETE_EXPRESSION)

    def invoke(self, arg, from_tty):
        argv = _split(arg)
        if not argv:
            raise gdb.GdbError("usage: tg-view POINTER D0 [D1 ...]")
        if len(argv) == 1:
            arr = _array_of(argv[0])
            self._write(arr)
            return
        ptr = gdb.parse_and_eval(argv[0])
        shape = [int(gdb.parse_and_eval(d)) for d in argv[1:]]
        if ptr.type.strip_typedefs().code == gdb.TYPE_CODE_ARRAY:
            ptr = ptr[0].address
        elif ptr.type.strip_typedefs().code != gdb.TYPE_CODE_PTR:
            # A tensor, array or vector seen with another shape of the same size (a reshape).
            arr = _array_of(argv[0])
            count = 1
            for d in shape:
                count *= d
            if count != arr.numel:
                raise gdb.GdbError("tg-view: %s has %d values, the shape %s has %d" %
                                   (argv[0], arr.numel, shape_str(shape), count))
            ptr = arr.begin
        shape = [int(d) for d in shape]
        self._write(XArray.raw(ptr, shape))

    @staticmethod
    def _write(arr):
        head = "%s %s" % (arr.dtype, shape_str(arr.shape))
        text = format_array(arr, indent=2)
        gdb.write(head + (" " + text if "\n" not in text else "\n  " + text) + "\n")


class TapeCommand(gdb.Command):
    """List the entries of the thread's active tape (or of the tg::Tape EXPR): tg-tape [EXPR]"""

    def __init__(self):
        super().__init__("tg-tape", gdb.COMMAND_DATA, gdb.COMPLETE_EXPRESSION)

    def invoke(self, arg, from_tty):
        if arg.strip():
            tape = gdb.parse_and_eval(arg)
        else:
            tape = active_tape()
            if tape is None:
                gdb.write("No active tape in this thread (no tg::Tape alive here, or inside a "
                          "tg::NoGradGuard).\n")
                return
        view = TapeView(tape)
        lines = view.text().split("\n")
        here = self._entry_in_backward(view)
        if here is not None:  # stopped in Tape::backward's loop: mark the entry it is at
            lines[1 + here] += "   <- Tape::backward is here"
        gdb.write("\n".join(lines) + "\n")

    @staticmethod
    def _entry_in_backward(view):
        try:
            frame = gdb.selected_frame()
            while frame is not None:
                position = _loop_position(frame)
                if position is not None:  # (the loop's index is past the end on its header)
                    return position[1] if 0 <= position[1] < len(view.entries) else None
                frame = frame.older()
        except (gdb.error, ValueError):
            pass
        return None


# The reverse loop: kernels::reference::tape_backward (src/core/tape_backward.cpp, or the
# student's exercises/tape_backward.cpp in the exercises build) walks the tape through
# Tape::backward's local class Walk, whose run_backward calls each entry's backward.
_LOOP_FUNCTION = "tg::kernels::reference::tape_backward"


def _is_walk_run(frame):
    # GCC's debug info gives the local class no enclosing name: gdb calls the frame
    # "Walk::run_backward" (the qualified form is accepted too).
    name = frame.name() or ""
    return re.match(r"^(tg::Tape::backward\(.*\)::)?Walk::run_backward($|\()", name) is not None


def _loop_position(frame):
    """(tape, entry index) where a frame of the reverse walk is: Walk::run_backward (its local
    `entry`), or the loop tape_backward (its index `i`, on the tape of the Tape::backward that
    called it); None for any other frame."""
    if _is_walk_run(frame):
        tape = _deref(_deref(frame.read_var("this"))["tape_"])
        k = TapeView(tape).index_of_entry(_deref(frame.read_var("entry")))
        return (tape, k) if k is not None else None
    if (frame.name() or "").startswith(_LOOP_FUNCTION):
        caller = frame.older()
        if caller is None or not (caller.name() or "").startswith("tg::Tape::backward"):
            return None
        tape = _deref(caller.read_var("this"))
        return tape, int(frame.read_var("i"))
    return None


def _loop_entry(frame):
    """The tg::TapeEntry the reverse walk is at in `frame` (see _loop_position)."""
    position = _loop_position(frame)
    if position is None:
        raise ValueError("not in the tape's reverse walk")
    view = TapeView(position[0])
    if not 0 <= position[1] < len(view.entries):
        raise ValueError("the loop is past its last entry")
    return view.entries[position[1]]


class _BackwardStop(gdb.Breakpoint):
    """A breakpoint on the call of an entry's backward (Tape::backward's Walk::run_backward)
    that stops only at the entries of one op. Should the call be on several lines, the user
    sees one breakpoint, on the first, and each other line has an internal breakpoint (not
    listed, no number of its own) that follows it: enabled, disabled and deleted with it."""

    def __init__(self, location, op, leader=None):
        super().__init__(location, internal=leader is not None)
        self.op = op
        self.leader = leader

    def stop(self):
        if self.leader is not None:
            if not self.leader.is_valid():  # the user deleted the breakpoint: go with it
                gdb.post_event(self.delete)
                return False
            if not self.leader.enabled:
                return False
        return self._matches()

    def _matches(self):
        try:
            return _cstring(_loop_entry(gdb.selected_frame())["op"]) == self.op
        except (gdb.error, ValueError) as err:
            gdb.write("tg-break-backward: cannot read the tape's loop (%s); stopping\n" % err)
            return True


def _backward_call_lines():
    """(file, [lines]) of the call of an entry's backward in the reverse walk: the first line
    after the start of Tape::backward containing "backward.closure()(" (in its Walk's
    run_backward, which the loop tape_backward calls for each entry)."""
    try:
        sals = gdb.decode_line("tg::Tape::backward")[1] or []
    except gdb.error:
        sals = []
    sals = [sal for sal in sals if sal.symtab is not None]
    if not sals:
        raise gdb.GdbError("tg-break-backward: tg::Tape::backward not found (no debug info?)")
    path = sals[0].symtab.fullname()
    with open(path) as f:
        lines = f.readlines()
    found = set()
    for sal in sals:
        body = next((number for number in range(sal.line, len(lines) + 1)
                     if "backward.closure()(" in lines[number - 1]), None)
        if body is not None:
            found.add(body)
    if found:
        return path, sorted(found)
    raise gdb.GdbError("tg-break-backward: no call of an entry's backward found in "
                       "Tape::backward's Walk::run_backward (%s)" % path)


def _on_stop(event):
    """When gdb stops on the body of the tape's reverse loop (the line of tape_backward that
    calls run_backward, after a step or next), or on the call of an entry's backward in
    Walk::run_backward (a tg-break-backward breakpoint), names the entry whose backward that
    line runs: stepping with `next`, the tape unwinds one entry per loop turn, and each turn
    says which."""
    try:
        frame = gdb.selected_frame()
        sal = frame.find_sal()
        if sal.symtab is None:
            return
        if _is_walk_run(frame):
            path, lines = _backward_call_lines()
            if sal.line not in lines or os.path.basename(sal.symtab.filename) != \
                    os.path.basename(path):
                return
        elif (frame.name() or "").startswith(_LOOP_FUNCTION):
            with open(sal.symtab.fullname()) as f:
                text = f.readlines()[sal.line - 1]
            if "run_backward(" not in text:
                return
        else:
            return
        position = _loop_position(frame)
        if position is None:
            return
        view = TapeView(position[0])
        k = position[1]
        if 0 <= k < len(view.entries):
            has_grad = bool(_node_of_tensor(view.entries[k]["output"]).dereference()["has_grad"])
            gdb.write("Tape::backward, %s: %s\n" %
                      ("next" if has_grad else "skips (no gradient)", view.entry_line(k)))
    except (gdb.error, gdb.GdbError, ValueError, OSError, IndexError):
        pass


class BreakBackwardCommand(gdb.Command):
    """Stop the tape's reverse walk at the entries of one op: tg-break-backward OP
Example: tg-break-backward batch_norm, then `continue`: gdb stops in the tape's reverse walk
(Walk::run_backward) on the line that calls BatchNorm's backward; `step` goes from there into the op's backward
and its named kernel (the skip rules keep it out of std:: and the tape's bookkeeping)."""

    def __init__(self):
        super().__init__("tg-break-backward", gdb.COMMAND_BREAKPOINTS)

    def invoke(self, arg, from_tty):
        op = arg.strip()
        if not op:
            raise gdb.GdbError("usage: tg-break-backward OP   (an op name as tg-tape shows it)")
        path, lines = _backward_call_lines()
        # One breakpoint for the user; each further loop gets an internal one that follows it.
        bp = _BackwardStop("%s:%d" % (path, lines[0]), op)
        for line in lines[1:]:
            _BackwardStop("%s:%d" % (path, line), op, leader=bp)
        gdb.write("Breakpoint %d: the call of each %s entry's backward in Tape::backward "
                  "(%s:%s)\n" % (bp.number, op, os.path.basename(path),
                                 ", ".join(str(line) for line in lines)))


class AdvanceCommand(gdb.Command):
    """Run to the next line of the current source file that contains TEXT:
    tg-advance TEXT [if CONDITION]
    tg-advance FILE:TEXT [if CONDITION]
Like `advance FILE:LINE` (it also stops if the current function returns), with the line
found by its text, so a walkthrough does not depend on line numbers. With `if CONDITION`,
runs (like `tbreak FILE:LINE if CONDITION` and `continue`) to the first time the line is
reached with CONDITION true. With FILE: (a source file of the program, e.g.
ch310_train_cnn.cpp:), the first line of that file containing TEXT, wherever the program
is now (`tbreak` and `continue`, or `run` if the program has not started).
Examples: in batch_norm_backward, tg-advance term3 if dy[i] != 0
          anywhere, tg-advance ch310_train_cnn.cpp:tape.backward(loss)"""

    def __init__(self):
        super().__init__("tg-advance", gdb.COMMAND_RUNNING)

    def invoke(self, arg, from_tty):
        text, _, condition = arg.strip().partition(" if ")
        text = text.strip()
        where = re.match(r"^([\w.+-]+\.(?:cpp|hpp|cc|h)):(.+)$", text)
        if where:
            self._in_file(where.group(1), where.group(2).strip(), condition, from_tty)
            return
        if not text:
            raise gdb.GdbError("usage: tg-advance [FILE:]TEXT [if CONDITION]")
        sal = gdb.selected_frame().find_sal()
        if sal.symtab is None:
            raise gdb.GdbError("tg-advance: no source for the current frame")
        path = sal.symtab.fullname()
        with open(path) as f:
            lines = f.readlines()
        for number in range(sal.line + 1, len(lines) + 1):
            if text in lines[number - 1]:
                if condition.strip():
                    gdb.execute("tbreak %s:%d if %s" % (path, number, condition), to_string=True)
                    gdb.execute("continue", from_tty)
                else:
                    gdb.execute("advance %s:%d" % (path, number), from_tty)
                return
        raise gdb.GdbError("tg-advance: no line after %d of %s contains %r" %
                           (sal.line, os.path.basename(path), text))

    @staticmethod
    def _in_file(name, text, condition, from_tty):
        try:
            sals = gdb.decode_line("%s:1" % name)[1] or []
        except gdb.error:
            sals = []
        sals = [sal for sal in sals if sal.symtab is not None]
        if not sals:
            raise gdb.GdbError("tg-advance: no source file %s in the program" % name)
        path = sals[0].symtab.fullname()
        with open(path) as f:
            lines = f.readlines()
        for number, line in enumerate(lines, 1):
            if text in line:
                cond = " if " + condition if condition.strip() else ""
                gdb.execute("tbreak %s:%d%s" % (path, number, cond), to_string=True)
                # Before `run`, it starts the program.
                started = gdb.selected_inferior().pid != 0
                gdb.execute("continue" if started else "run", from_tty)
                return
        raise gdb.GdbError("tg-advance: no line of %s contains %r" % (name, text))


class DataFunction(gdb.Function):
    """$tg_data(t): the address of the first value of a tg::Tensor or xt array, as a pointer
to its element type. For watchpoints on one value: watch -l $tg_data(running_mean)[0]"""

    def __init__(self):
        super().__init__("tg_data")

    def invoke(self, value):
        val = _deref(value)
        tag = val.type.strip_typedefs().tag or ""
        if tag == "tg::Tensor":
            node = _node_of_tensor(val)
            if int(node) == 0:
                raise gdb.GdbError("$tg_data: an undefined tensor")
            val = node.dereference()["value"]
        elif tag == "tg::Node":
            val = val["value"]
        if not _is_xcontainer(val.type):
            raise gdb.GdbError("$tg_data: %s is not a tg::Tensor or an xt array" % val.type)
        arr = XArray(val)
        return arr.begin.cast(arr.elem.pointer())


def statistics(values):
    """(count, nan, inf, mean, std, min, max) over the finite values (std: population)."""
    finite = [v for v in values if math.isfinite(v)]
    nan = sum(1 for v in values if isinstance(v, float) and math.isnan(v))
    inf = len(values) - len(finite) - nan
    if not finite:
        return len(values), nan, inf, None, None, None, None
    n = len(finite)
    mean = math.fsum(finite) / n
    var = math.fsum((v - mean) ** 2 for v in finite) / n
    return len(values), nan, inf, mean, math.sqrt(var), min(finite), max(finite)


class StatsCommand(gdb.Command):
    """Mean, standard deviation, min, max and NaN/Inf counts of a tensor or array.
Usage: tg-stats EXPR   (EXPR: a tg::Tensor, an xt::xarray, or x.grad())
The std is the population one (divide by n, like BatchNorm's σ²_B); NaN and Inf values are
counted and left out of the other numbers."""

    def __init__(self):
        super().__init__("tg-stats", gdb.COMMAND_DATA, gdb.COMPLETE_EXPRESSION)

    def invoke(self, arg, from_tty):
        if not arg.strip():
            raise gdb.GdbError("usage: tg-stats EXPR")
        arr = _array_of(arg)
        count, nan, inf, mean, std, lo, hi = statistics(arr.values())
        head = "%s: %s %s, %d values" % (arg.strip(), arr.dtype, shape_str(arr.shape), count)
        if mean is None:
            gdb.write("%s, no finite value (NaN %d, Inf %d)\n" % (head, nan, inf))
            return
        gdb.write("%s\n  mean %.6g  std %.6g  min %.6g  max %.6g  NaN %d  Inf %d\n" %
                  (head, mean, std, lo, hi, nan, inf))


class HistCommand(gdb.Command):
    """A histogram of a tensor's or array's values in the terminal.
Usage: tg-hist EXPR [BINS]   (BINS defaults to 20; NaN and Inf are counted apart)"""

    def __init__(self):
        super().__init__("tg-hist", gdb.COMMAND_DATA, gdb.COMPLETE_EXPRESSION)

    def invoke(self, arg, from_tty):
        argv = _split(arg)
        if not argv:
            raise gdb.GdbError("usage: tg-hist EXPR [BINS]")
        bins = int(argv[1]) if len(argv) > 1 else 20
        if bins < 1:
            raise gdb.GdbError("tg-hist: BINS must be at least 1")
        arr = _array_of(argv[0])
        values = arr.values()
        finite = [v for v in values if math.isfinite(v)]
        gdb.write(histogram_text(argv[0], arr, values, finite, bins))


def histogram_text(name, arr, values, finite, bins, width=50):
    out = "%s: %s %s, %d values\n" % (name, arr.dtype, shape_str(arr.shape), len(values))
    if not finite:
        return out + "  no finite value\n"
    lo, hi = min(finite), max(finite)
    if hi == lo:
        counts, edges = [len(finite)], [lo, hi]
    else:
        counts = [0] * bins
        step = (hi - lo) / bins
        for v in finite:
            counts[min(bins - 1, int((v - lo) / step))] += 1
        edges = [lo + k * step for k in range(bins + 1)]
    top = max(counts)
    for k, c in enumerate(counts):
        bar = "#" * (0 if top == 0 else int(round(width * c / top)))
        if c and not bar:
            bar = "."
        out += "  [%11.4g, %11.4g%s %8d %s\n" % (edges[k], edges[k + 1],
                                                 "]" if k == len(counts) - 1 else ")", c, bar)
    other = len(values) - len(finite)
    if other:
        out += "  NaN/Inf: %d\n" % other
    return out


# ---------------------------------------------------------------------------------------------
# Frame filter: `bt` shows a kernel's raw data pointers (const real* x, double* mean) short
# ---------------------------------------------------------------------------------------------


class _ShortArg:
    """A frame argument as `bt` shows it (gdb's SymValueWrapper protocol)."""

    def __init__(self, sym, value):
        self.sym = sym
        self.val = value

    def symbol(self):
        return self.sym

    def value(self):
        return self.val


def _is_data_pointer(t):
    """A pointer to numbers (float*, const double*, long*), not a C string."""
    t = t.strip_typedefs()
    if t.code != gdb.TYPE_CODE_PTR:
        return False
    target = t.target().strip_typedefs()
    return target.code == gdb.TYPE_CODE_FLT or (target.code == gdb.TYPE_CODE_INT and
                                                target.sizeof > 1)


try:
    from gdb.FrameDecorator import FrameDecorator

    class _TapegradFrame(FrameDecorator):
        """A frame of tapegrad's code: its data-pointer arguments print as "..." (as gdb prints
        a Tensor argument), so `bt`'s kernel line shows the sizes, not eight addresses."""

        def function(self):
            # The name as gdb's own `bt` prints it ("tg::batch_norm"), not the symbol's whole
            # signature, which is what FrameDecorator gives.
            frame = self.inferior_frame()
            if frame.type() == gdb.NORMAL_FRAME and frame.name():
                return frame.name()
            return super().function()

        def frame_args(self):
            args = super().frame_args()
            if args is None:
                return None
            frame = self.inferior_frame()
            # gdb prints a filtered frame's arguments in "summary" mode, where a std::string or
            # a Tensor passed by reference would print its text: keep `bt` as without a filter
            # (print frame-arguments scalars, raw-frame-arguments on): "..." for them.
            scalars = gdb.parameter("print frame-arguments") == "scalars"
            out = []
            for a in args:
                sym = a.symbol()
                try:
                    if isinstance(sym, gdb.Symbol):
                        t = sym.type.strip_typedefs()
                        while t.code in (gdb.TYPE_CODE_REF, gdb.TYPE_CODE_RVALUE_REF):
                            t = t.target().strip_typedefs()
                        if (self.elide and _is_data_pointer(t)) or (scalars and t.code in (
                                gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION, gdb.TYPE_CODE_ARRAY)):
                            out.append(_ShortArg(sym.print_name, _ELIDED))
                        else:  # read here: gdb 13 asserts reading it for a decorated frame
                            out.append(_ShortArg(sym, sym.value(frame)))
                        continue
                except gdb.error:
                    pass
                out.append(a)
            return out

    class _TapegradFrameFilter:
        """Active only when the program is stopped in one of tapegrad's kernels (the frames with
        raw data pointers): gdb prints every frame of a filtered backtrace its Python way
        ("at libstdc++.so.6" for "from libstdc++.so.6"), so other backtraces stay gdb's own."""

        def __init__(self):
            self.name = "tapegrad-short-pointers"
            self.priority = 100
            self.on = True
            gdb.frame_filters[self.name] = self

        @property
        def enabled(self):
            if not self.on:
                return False
            try:
                return (gdb.newest_frame().name() or "").startswith("tg::kernels::")
            except gdb.error:
                return False

        @enabled.setter
        def enabled(self, value):  # `disable frame-filter global tapegrad-short-pointers`
            self.on = bool(value)

        def filter(self, frame_iter):
            for f in frame_iter:
                d = _TapegradFrame(f)
                name = f.inferior_frame().name() or ""
                d.elide = name.startswith("tg::")
                yield d
except ImportError:  # a gdb without frame filters
    _TapegradFrameFilter = None

_ELIDED = "..."


def _register_commands():
    AtCommand()
    ViewCommand()
    TapeCommand()
    BreakBackwardCommand()
    AdvanceCommand()
    DataFunction()
    StatsCommand()
    HistCommand()


# ---------------------------------------------------------------------------------------------
# Skip rules: `step` goes into our code (ops, kernels, the tape, modules), not into std::,
# xtensor or shared_ptr internals. i9's scripts/gdb/skip.gdb (kernel seam) is sourced too.
# ---------------------------------------------------------------------------------------------


def _source_skip_rules():
    for name in ("skip.gdb", "tapegrad-skip.gdb"):
        path = os.path.join(_HERE, name)
        if os.path.exists(path):
            try:
                gdb.execute("source " + path, to_string=True)
            except gdb.error as err:  # a bad rule must not cost the printers
                gdb.write("tapegrad: %s\n" % err)


if not getattr(gdb, "_tapegrad_loaded", False):
    gdb._tapegrad_loaded = True
    _register()
    _register_xmethods()
    _register_commands()
    _source_skip_rules()
    gdb.events.stop.connect(_on_stop)
    if _TapegradFrameFilter is not None:
        _TapegradFrameFilter()

# tapegrad_lldb.py — lldb support for tapegrad: type summaries and synthetic children.
#
# The lldb counterpart of scripts/gdb/tapegrad.py's structured printers (what an IDE shows):
#   tg::Tensor, tg::Node   "Tensor 'x' [2, 3] float32, requires_grad, leaf"; children name,
#                          shape, dtype, requires_grad, recorded, values (the first 100), grad
#   xt::xarray / xtensor   "float32 [64, 16, 10, 10]"; children shape, dtype, values
#   tg::nn::* modules      "BatchNorm2d(16, eps=1e-05, ...)", "Sequential (5 modules)";
#                          children: parameters and buffers by name, then the layers by name
#   tg::Tape               "Tape #3 with 14 entries"; children %0, %1, ... (the entries)
#   tg::TapeEntry          "batch_norm(3 inputs) -> [64, 16, 10, 10]"; children op, inputs, output
#   tg::optim::SGD / Adam  "SGD(lr=0.1, ...), 10 parameters"; children options, parameters, state
#
# Load it in lldb (or put the line in ~/.lldbinit):
#     command script import /path/to/tapegrad/scripts/lldb/tapegrad_lldb.py
# or `lldb -s scripts/lldb/lldbinit`; an installed tapegrad has it in
# <prefix>/share/tapegrad/lldb/. docs/debugging.md, "lldb".
#
# Everything here reads the program's memory (libstdc++'s and xtensor's layouts); nothing
# calls a function of the program. Debian 12's lldb 14 needs
# PYTHONPATH=/usr/lib/llvm-14/lib/python3.11/dist-packages to find its own Python module.
import re
import struct

import lldb

CHILD_VALUES = 100  # a tensor's "values" child: its first values, at most this many
KDESTROYED = (1 << 64) - 1


# ---- reading libstdc++ / xtensor ------------------------------------------------------------


def _raw(v):
    """The value without lldb's own synthetic children (libstdc++ formatters)."""
    return v.GetNonSyntheticValue() if v.IsSynthetic() else v


def _member(v, *path):
    v = _raw(v)
    for name in path:
        v = _raw(v.GetChildMemberWithName(name))
        if not v.IsValid():
            raise ValueError("no member " + name)
    return v


def _u(v):
    return _raw(v).GetValueAsUnsigned(0)


def _read(process, addr, size):
    if size <= 0:
        return b""
    err = lldb.SBError()
    data = process.ReadMemory(addr, size, err)
    if not err.Success():
        raise ValueError("cannot read memory at 0x%x: %s" % (addr, err.GetCString()))
    return data


def _std_string(v):
    v = _raw(v)
    n = _u(_member(v, "_M_string_length"))
    if n == 0:
        return ""
    p = _u(_member(v, "_M_dataplus", "_M_p"))
    return _read(v.GetProcess(), p, min(n, 4096)).decode("utf-8", "replace")


def _vector(v):
    """The elements of a std::vector, as SBValues."""
    impl = _member(v, "_M_impl")
    start = _member(impl, "_M_start")
    begin, end = start.GetValueAsUnsigned(0), _u(_member(impl, "_M_finish"))
    elem = start.GetType().GetPointeeType()
    size = elem.GetByteSize()
    n = (end - begin) // size if size else 0
    return [v.CreateValueFromAddress("[%d]" % i, begin + i * size, elem) for i in range(n)]


def _cstring(v):
    p = _u(v)
    if not p:
        return "?"
    data = _read(v.GetProcess(), p, 64)
    return data.split(b"\0", 1)[0].decode("utf-8", "replace")


def _seq(v):
    """An xtensor shape (svector or std::array) as a list of ints."""
    v = _raw(v)
    b = v.GetChildMemberWithName("m_begin")
    if b.IsValid():
        begin, end = _u(b), _u(_member(v, "m_end"))
        elem = b.GetType().GetPointeeType().GetByteSize()
        n = (end - begin) // elem if elem else 0
        return list(struct.unpack("<%dQ" % n, _read(v.GetProcess(), begin, 8 * n))) if n else []
    elems = _member(v, "_M_elems")
    return [_u(elems.GetChildAtIndex(i)) for i in range(elems.GetNumChildren())]


def shape_str(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"


class XArray:
    """An xt::xarray_container / xtensor_container: shape, element type, first address."""

    def __init__(self, v):
        self.v = _raw(v)
        self.shape = _seq(_member(self.v, "m_shape"))
        storage = _member(self.v, "m_storage")
        begin = _member(storage, "p_begin")
        self.begin = _u(begin)
        self.elem = begin.GetType().GetPointeeType().GetCanonicalType()
        size = self.elem.GetByteSize()
        self.stored = (_u(_member(storage, "p_end")) - self.begin) // size if self.begin else 0
        n = 1
        for d in self.shape:
            n *= d
        self.numel = n

    @property
    def dtype(self):
        name, size = self.elem.GetName(), self.elem.GetByteSize()
        if name in ("float", "double"):
            return "float32" if size == 4 else "float64"
        if name == "bool":
            return "bool"
        return ("uint" if "unsigned" in name else "int") + str(8 * size)


def _is_xcontainer(name):
    return name.startswith("xt::xarray_container<") or name.startswith("xt::xtensor_container<")


def _make_string(parent, name, text):
    """A child holding `text` (a char array: lldb shows it as a string)."""
    raw = text.encode("utf-8") + b"\0"
    data = lldb.SBData()
    data.SetData(lldb.SBError(), raw, lldb.eByteOrderLittle, 8)
    char = parent.GetTarget().GetBasicType(lldb.eBasicTypeChar)
    return parent.CreateValueFromData(name, data, char.GetArrayType(len(raw)))


def _make_shape(parent, shape):
    """The shape as the text "[8, 5]" (as gdb's printers show it)."""
    return _make_string(parent, "shape", shape_str(shape))


def _array_children(parent, arr):
    out = [_make_shape(parent, arr.shape), _make_string(parent, "dtype", arr.dtype)]
    k = min(arr.numel, arr.stored, CHILD_VALUES)
    if k > 0:
        name = "values" if k == arr.numel else "values[:%d]" % k
        out.append(parent.CreateValueFromAddress(name, arr.begin, arr.elem.GetArrayType(k)))
    return out


# ---- tg::Tensor / tg::Node ------------------------------------------------------------------


def _node_of_tensor(v):
    """The tg::Node a Tensor points to (an SBValue), or None for an undefined tensor."""
    ptr = _member(v, "node_", "_M_ptr")
    if not _u(ptr):
        return None
    return _raw(ptr.Dereference())


def _recorded(node):
    tape_id = _u(_member(node, "tape_id"))
    if tape_id == 0:
        return "leaf"
    if tape_id == KDESTROYED:
        return "made on a tape since destroyed"
    return "made by an op on tape #%d" % tape_id


def node_summary(node):
    value = XArray(_member(node, "value"))
    name = _std_string(_member(node, "name"))
    head = "Tensor" + (" '%s'" % name if name else "")
    head += " %s %s" % (shape_str(value.shape), value.dtype)
    if _u(_member(node, "requires_grad")):
        head += ", requires_grad"
    return head + ", " + _recorded(node)


def node_children(parent, node):
    out = []
    if _std_string(_member(node, "name")):
        out.append(_member(node, "name").Clone("name"))
    arr = XArray(_member(node, "value"))
    kids = _array_children(parent, arr)
    out += kids[:2]
    out.append(_member(node, "requires_grad").Clone("requires_grad"))
    out.append(_make_string(parent, "recorded", _recorded(node)))
    out += kids[2:]
    if _u(_member(node, "has_grad")):
        out.append(_member(node, "grad").Clone("grad"))
    return out


def tensor_summary(valobj, internal_dict):
    try:
        node = _node_of_tensor(valobj)
        return "Tensor(undefined)" if node is None else node_summary(node)
    except ValueError as err:
        return "<tg::Tensor, unreadable: %s>" % err


def node_summary_fn(valobj, internal_dict):
    try:
        return node_summary(_raw(valobj))
    except ValueError as err:
        return "<tg::Node, unreadable: %s>" % err


def xarray_summary(valobj, internal_dict):
    try:
        arr = XArray(valobj)
        return "%s %s" % (arr.dtype, shape_str(arr.shape))
    except ValueError as err:
        return "<xt array, unreadable: %s>" % err


class _Provider:
    """Base of the synthetic children providers: children computed once per update()."""

    def __init__(self, valobj, internal_dict):
        self.valobj = valobj
        self.kids = []

    def update(self):
        try:
            self.kids = self.compute()
        except ValueError:
            self.kids = []
        return False

    def num_children(self):
        return len(self.kids)

    def get_child_index(self, name):
        for i, k in enumerate(self.kids):
            if k.GetName() == name:
                return i
        return -1

    def get_child_at_index(self, index):
        return self.kids[index] if 0 <= index < len(self.kids) else None

    def has_children(self):
        return True


class TensorProvider(_Provider):
    def compute(self):
        node = _node_of_tensor(self.valobj)
        return [] if node is None else node_children(self.valobj, node)


class NodeProvider(_Provider):
    def compute(self):
        return node_children(self.valobj, _raw(self.valobj))


class XArrayProvider(_Provider):
    def compute(self):
        return _array_children(self.valobj, XArray(self.valobj))


# ---- tg::nn modules -------------------------------------------------------------------------


def _derives_from(t, base):
    t = t.GetCanonicalType()
    if t.GetName() == base:
        return True
    for i in range(t.GetNumberOfDirectBaseClasses()):
        if _derives_from(t.GetDirectBaseClassAtIndex(i).GetType(), base):
            return True
    return False


def _typeinfo_name(mangled):
    """"N2tg2nn11BatchNorm2dE" -> "tg::nn::BatchNorm2d" (plain nested names only), else None."""
    m = re.fullmatch(r"N((?:\d+\w+?)+)E|(\d+)(\w+)", mangled)
    if not m:
        return None
    body, parts = m.group(1) or mangled, []
    while body:
        n = re.match(r"\d+", body)
        if not n:
            return None
        k = int(n.group())
        start = n.end()
        parts.append(body[start:start + k])
        body = body[start + k:]
    return "::".join(parts)


def _dynamic(v):
    """The most-derived object of a polymorphic class: read from its vtable's type_info (the
    entry before the vtable's address point holds it; its second word is the mangled name)."""
    raw = _raw(v)
    addr = raw.GetLoadAddress()
    t = raw.GetType().GetCanonicalType()
    if addr == lldb.LLDB_INVALID_ADDRESS or not t.IsPolymorphicClass():
        return v
    try:
        process = raw.GetProcess()
        word = lambda a: struct.unpack("<Q", _read(process, a, 8))[0]  # noqa: E731
        typeinfo = word(word(addr) - 8)
        text = _read(process, word(typeinfo + 8), 128).split(b"\0", 1)[0].decode()
    except (ValueError, struct.error, UnicodeDecodeError):
        return v
    name = _typeinfo_name(text.lstrip("*"))
    if name and name != t.GetName():
        derived = raw.GetTarget().FindFirstType(name)
        if derived.IsValid():
            return raw.CreateValueFromAddress(raw.GetName() or "", addr, derived)
    return v


def _kind(v):
    return re.sub(r"<.*", "", v.GetType().GetCanonicalType().GetName()).split("::")[-1]


def _py_number(x):
    return "%g" % x


def _py_bool(x):
    return "True" if x else "False"


def _f(v, *path):
    """A floating-point member."""
    m = _member(v, *path)
    data = m.GetData()
    err = lldb.SBError()
    return data.GetDouble(err, 0) if m.GetByteSize() == 8 else data.GetFloat(err, 0)


def extra_repr(kind, m):
    """The layer's extra_repr(), as the library noted it (tg::nn::Module::debug_extra_repr_, as
    scripts/gdb/tapegrad.py reads it): from memory, no code run, no second copy here."""
    return _std_string(_member(m, "debug_extra_repr_"))


def _is_module(v):
    return _derives_from(v.GetType(), "tg::nn::Module")


def module_summary(valobj, internal_dict):
    v = _dynamic(valobj)
    if not _is_module(v):  # an options struct of tg::nn (the regex matches it too)
        return ""
    try:
        kind = _kind(v)
        n = len(_vector(_member(v, "children_")))
        if n:
            return "%s (%d module%s)" % (kind, n, "" if n == 1 else "s")
        return "%s(%s)" % (kind, extra_repr(kind, v))
    except ValueError as err:
        return "<tg::nn::Module, unreadable: %s>" % err


class ModuleProvider(_Provider):
    """A layer's parameters and buffers by name, then its layers by name, then `training`."""

    def compute(self):
        v = _dynamic(self.valobj)
        if not _is_module(v):  # an options struct in tg::nn:: and the like: its own members
            raw = _raw(self.valobj)
            return [raw.GetChildAtIndex(i) for i in range(raw.GetNumChildren())]
        out = []
        for field in ("parameters_", "buffers_"):
            for pair in _vector(_member(v, field)):
                out.append(_member(pair, "second").Clone(_std_string(_member(pair, "first"))))
        for pair in _vector(_member(v, "children_")):
            ptr = _member(pair, "second", "_M_ptr")
            if _u(ptr):
                child = _dynamic(ptr.Dereference())
                out.append(child.Clone(_std_string(_member(pair, "first"))))
        out.append(_member(v, "training_").Clone("training"))
        return out


# ---- tg::Tape, tg::TapeEntry ----------------------------------------------------------------


def tape_summary(valobj, internal_dict):
    try:
        v = _raw(valobj)
        return "Tape #%d with %d entries" % (_u(_member(v, "id_")),
                                             len(_vector(_member(v, "entries_"))))
    except ValueError as err:
        return "<tg::Tape, unreadable: %s>" % err


class TapeProvider(_Provider):
    def compute(self):
        return [e.Clone("%%%d" % i) for i, e in enumerate(_vector(_member(self.valobj, "entries_")))]


def _tensor_shape(t):
    node = _node_of_tensor(t)
    return [] if node is None else XArray(_member(node, "value")).shape


def entry_summary(valobj, internal_dict):
    try:
        v = _raw(valobj)
        args = []
        for t in _vector(_member(v, "inputs")):
            node = _node_of_tensor(t)
            name = _std_string(_member(node, "name")) if node is not None else ""
            args.append((name or "?") + shape_str(_tensor_shape(t)))
        return "%s(%s) -> %s" % (_cstring(_member(v, "op")), ", ".join(args),
                                 shape_str(_tensor_shape(_member(v, "output"))))
    except ValueError as err:
        return "<tg::TapeEntry, unreadable: %s>" % err


class TapeEntryProvider(_Provider):
    def compute(self):
        v = _raw(self.valobj)
        out = [_make_string(self.valobj, "op", _cstring(_member(v, "op")))]
        for k, t in enumerate(_vector(_member(v, "inputs"))):
            out.append(t.Clone("inputs[%d]" % k))
        out.append(_member(v, "output").Clone("output"))
        return out


# ---- tg::optim ------------------------------------------------------------------------------


def optimizer_summary(valobj, internal_dict):
    v = _dynamic(valobj)
    try:
        kind = _kind(v)
        n = len(_vector(_member(v, "parameters_")))
        opts = ""
        if kind == "SGD":
            o = _member(v, "options_")
            opts = "lr=%s, momentum=%s, dampening=%s, weight_decay=%s, nesterov=%s" % (
                _py_number(_f(o, "lr")), _py_number(_f(o, "momentum")),
                _py_number(_f(o, "dampening")), _py_number(_f(o, "weight_decay")),
                _py_bool(_u(_member(o, "nesterov"))))
        elif kind == "Adam":
            o = _member(v, "options_")
            opts = "lr=%s, betas=(%s, %s), eps=%s, weight_decay=%s" % (
                _py_number(_f(o, "lr")), _py_number(_f(o, "betas", "first")),
                _py_number(_f(o, "betas", "second")), _py_number(_f(o, "eps")),
                _py_number(_f(o, "weight_decay")))
        return "%s(%s), %d parameter%s" % (kind, opts, n, "" if n == 1 else "s")
    except ValueError as err:
        return "<tg::optim optimizer, unreadable: %s>" % err


class OptimizerProvider(_Provider):
    def compute(self):
        v = _dynamic(self.valobj)
        out = []
        for field, name in (("options_", "options"), ("parameters_", "parameters"),
                            ("states_", "state"), ("buffers_", "state")):
            m = _raw(v).GetChildMemberWithName(field)
            if m.IsValid():
                out.append(m.Clone(name))
        return out


# ---- registration ---------------------------------------------------------------------------

_MODULE_REGEX = r"^tg::nn::[A-Z][A-Za-z0-9]*$"
_OPTIM_REGEX = r"^tg::optim::(SGD|Adam|Optimizer)$"
_XARRAY_REGEX = r"^xt::(xarray|xtensor)_container<.+>$"


def __lldb_init_module(debugger, internal_dict):
    mod = __name__
    cmds = [
        "type summary add -e -p -w tapegrad -F %s.tensor_summary tg::Tensor" % mod,
        "type synthetic add -p -w tapegrad -l %s.TensorProvider tg::Tensor" % mod,
        "type summary add -e -p -w tapegrad -F %s.node_summary_fn tg::Node" % mod,
        "type synthetic add -p -w tapegrad -l %s.NodeProvider tg::Node" % mod,
        "type summary add -e -p -w tapegrad -F %s.xarray_summary -x '%s'" % (mod, _XARRAY_REGEX),
        "type synthetic add -p -w tapegrad -l %s.XArrayProvider -x '%s'" % (mod, _XARRAY_REGEX),
        "type summary add -e -p -w tapegrad -F %s.module_summary -x '%s'" % (mod, _MODULE_REGEX),
        "type synthetic add -p -w tapegrad -l %s.ModuleProvider -x '%s'" % (mod, _MODULE_REGEX),
        "type summary add -e -p -w tapegrad -F %s.tape_summary tg::Tape" % mod,
        "type synthetic add -p -w tapegrad -l %s.TapeProvider tg::Tape" % mod,
        "type summary add -e -p -w tapegrad -F %s.entry_summary tg::TapeEntry" % mod,
        "type synthetic add -p -w tapegrad -l %s.TapeEntryProvider tg::TapeEntry" % mod,
        "type summary add -e -p -w tapegrad -F %s.optimizer_summary -x '%s'" % (mod, _OPTIM_REGEX),
        "type synthetic add -p -w tapegrad -l %s.OptimizerProvider -x '%s'" % (mod, _OPTIM_REGEX),
        "type category enable tapegrad",
    ]
    for c in cmds:
        debugger.HandleCommand(c)

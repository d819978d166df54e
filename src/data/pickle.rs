//! Python pickles of numpy arrays (Detectron's proposal files, Caffe2 blob dictionaries):
//! a reader for protocols 0-5 as Python 2 and Python 3 write them, and a protocol-2 writer
//! that writes what Python 2's `cPickle` wrote, so that Python 2 and Python 3 (with
//! `encoding='latin1'`, as Detectron loads its files) both read it.
//!
//! The reader is a pickle machine (a stack, a mark stack and a memo) that knows the globals
//! numpy pickles call: `numpy.core.multiarray._reconstruct` (numpy 1) or
//! `numpy._core.multiarray._reconstruct` (numpy 2) followed by `BUILD` with the array's state
//! tuple, `numpy.dtype` with its own state tuple, `numpy.core.numeric._frombuffer` (protocol 5),
//! `numpy.core.multiarray.scalar` (numpy scalars), and `_codecs.encode(text, 'latin1')`, which
//! is how Python 3 writes `bytes` at protocol 2. Any other global, and the opcodes that build
//! arbitrary objects, is an error naming it and its offset.
//!
//! A Python 2 `str` is bytes: it reads as [`PyValue::Bytes`]; [`PyValue::text`] decodes it as
//! latin-1, which is what Python 3 does with `encoding='latin1'`.

use anyhow::{bail, Context, Result};
use std::borrow::Cow;
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

/// A value read from a pickle.
#[derive(Clone, Debug, PartialEq)]
pub enum PyValue {
    /// `None`.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// An `int` (or a Python 2 `long`) that fits in 64 bits.
    Int(i64),
    /// A `float`.
    Float(f64),
    /// A Python 3 `str` or a Python 2 `unicode`.
    Str(String),
    /// A Python 3 `bytes` or `bytearray`, or a Python 2 `str`.
    Bytes(Vec<u8>),
    /// A `list`.
    List(Vec<PyValue>),
    /// A `tuple`.
    Tuple(Vec<PyValue>),
    /// A `set` or `frozenset`, in file order.
    Set(Vec<PyValue>),
    /// A `dict` (or `collections.OrderedDict`), in file order.
    Dict(Vec<(PyValue, PyValue)>),
    /// A numpy `ndarray`.
    Array(NdArray),
    /// A numpy `dtype` object.
    Dtype(Dtype),
    /// A reference to a module-level class or function that was not called.
    Global {
        /// The module, e.g. `numpy`.
        module: String,
        /// The name in the module, e.g. `ndarray`.
        name: String,
    },
}

/// A numpy element type: kind, item size and byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dtype {
    /// numpy's kind character: `f` float, `i` signed, `u` unsigned, `b` bool, `c` complex,
    /// `O` object, `S` bytes, `U` text, `V` void, `M`/`m` datetime.
    pub kind: char,
    /// Bytes per element.
    pub size: usize,
    /// The element bytes are big-endian (numpy's `>`); `<`, `|` and `=` read as little-endian.
    pub big_endian: bool,
}

impl Dtype {
    /// Parses a numpy type string such as `f4`, `<i8`, `>u2`, `b1` or `?`.
    pub fn parse(descr: &str) -> Result<Dtype> {
        let (big_endian, rest) = match descr.as_bytes().first() {
            Some(b'>') => (true, &descr[1..]),
            Some(b'<' | b'|' | b'=') => (false, &descr[1..]),
            _ => (false, descr),
        };
        if rest == "?" {
            return Ok(Dtype {
                kind: 'b',
                size: 1,
                big_endian,
            });
        }
        let mut chars = rest.chars();
        let kind = chars
            .next()
            .with_context(|| format!("empty numpy type string {descr:?}"))?;
        let size: usize = chars
            .as_str()
            .parse()
            .with_context(|| format!("numpy type string {descr:?} has no item size"))?;
        Ok(Dtype {
            kind,
            size,
            big_endian,
        })
    }

    /// The numpy type string with its byte order, e.g. `<f4`.
    pub fn descr(&self) -> String {
        let order = if self.size == 1 {
            '|'
        } else if self.big_endian {
            '>'
        } else {
            '<'
        };
        format!("{order}{}{}", self.kind, self.size)
    }

    /// float32, little-endian: the dtype of Detectron's proposal boxes and scores.
    pub const F4: Dtype = Dtype {
        kind: 'f',
        size: 4,
        big_endian: false,
    };
}

/// A numpy array: its dtype, shape, memory order and raw element bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct NdArray {
    /// The element type.
    pub dtype: Dtype,
    /// The shape, outermost axis first, as numpy reports it.
    pub shape: Vec<usize>,
    /// The bytes are in Fortran (column-major) order rather than C (row-major) order.
    pub fortran_order: bool,
    /// The raw element bytes, `shape.product() * dtype.size` of them.
    pub data: Vec<u8>,
}

impl NdArray {
    /// A C-ordered float32 array of `values` with `shape`.
    pub fn from_f32(shape: Vec<usize>, values: &[f32]) -> NdArray {
        NdArray {
            dtype: Dtype::F4,
            shape,
            fortran_order: false,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as f64, in C (row-major) order, from any float, integer or bool dtype.
    pub fn to_f64_vec(&self) -> Result<Vec<f64>> {
        let d = self.dtype;
        let conv: fn(&[u8], bool) -> f64 = match (d.kind, d.size) {
            ('f', 4) => |b, be| f32::from_bits(word(b, be) as u32) as f64,
            ('f', 8) => |b, be| f64::from_bits(word(b, be)),
            ('f', 2) => |b, be| f16_to_f64(word(b, be) as u16),
            ('i', 1 | 2 | 4 | 8) => |b, be| signed(b, be) as f64,
            ('u', 1 | 2 | 4 | 8) | ('b', 1) => |b, be| word(b, be) as f64,
            _ => bail!("numpy dtype {} is not a real number type", d.descr()),
        };
        self.elements_c_order(|b| conv(b, d.big_endian))
    }

    /// The elements as f32, in C (row-major) order (f8 and integers are rounded to nearest).
    pub fn to_f32_vec(&self) -> Result<Vec<f32>> {
        if self.dtype.kind == 'f' && self.dtype.size == 4 {
            let be = self.dtype.big_endian;
            return self.elements_c_order(|b| f32::from_bits(word(b, be) as u32));
        }
        Ok(self.to_f64_vec()?.into_iter().map(|v| v as f32).collect())
    }

    /// The elements as i64, in C (row-major) order, from an integer or bool dtype (u8 values
    /// above `i64::MAX` are an error).
    pub fn to_i64_vec(&self) -> Result<Vec<i64>> {
        let d = self.dtype;
        match (d.kind, d.size) {
            ('i', 1 | 2 | 4 | 8) => self.elements_c_order(|b| signed(b, d.big_endian)),
            ('u', 1 | 2 | 4 | 8) | ('b', 1) => self
                .elements_c_order(|b| word(b, d.big_endian))?
                .into_iter()
                .map(|v| i64::try_from(v).context("a uint64 value exceeds the range of i64"))
                .collect(),
            _ => bail!("numpy dtype {} is not an integer type", d.descr()),
        }
    }

    /// Applies `f` to each element's bytes, visiting the elements in C order whatever the
    /// memory order.
    fn elements_c_order<T>(&self, f: impl Fn(&[u8]) -> T) -> Result<Vec<T>> {
        let size = self.dtype.size;
        let n = self.len();
        if self.data.len() != n * size {
            bail!(
                "array of shape {:?} and dtype {} holds {} bytes, not {}",
                self.shape,
                self.dtype.descr(),
                self.data.len(),
                n * size
            );
        }
        if !self.fortran_order || self.shape.len() < 2 {
            return Ok(self.data.chunks_exact(size).map(f).collect());
        }
        // Fortran strides (in elements): the first axis varies fastest.
        let mut strides = vec![1usize; self.shape.len()];
        for k in 1..self.shape.len() {
            strides[k] = strides[k - 1] * self.shape[k - 1];
        }
        let mut index = vec![0usize; self.shape.len()];
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let offset: usize = index.iter().zip(&strides).map(|(i, s)| i * s).sum();
            out.push(f(&self.data[offset * size..(offset + 1) * size]));
            for k in (0..self.shape.len()).rev() {
                index[k] += 1;
                if index[k] < self.shape[k] {
                    break;
                }
                index[k] = 0;
            }
        }
        Ok(out)
    }
}

/// The element's bytes (1, 2, 4 or 8 of them) as an unsigned integer.
fn word(b: &[u8], big_endian: bool) -> u64 {
    let mut v = 0u64;
    if big_endian {
        for &x in b {
            v = (v << 8) | x as u64;
        }
    } else {
        for &x in b.iter().rev() {
            v = (v << 8) | x as u64;
        }
    }
    v
}

/// The element's bytes as a two's-complement signed integer.
fn signed(b: &[u8], big_endian: bool) -> i64 {
    let bits = 8 * b.len() as u32;
    let v = word(b, big_endian);
    ((v << (64 - bits)) as i64) >> (64 - bits)
}

/// IEEE half precision to f64.
fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f64;
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

impl PyValue {
    /// The value of `key` in a dict whose keys are text (`str`, or Python 2 `str`).
    pub fn get(&self, key: &str) -> Option<&PyValue> {
        match self {
            PyValue::Dict(items) => items
                .iter()
                .find(|(k, _)| k.text().as_deref() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Text: a `str`, or bytes decoded as latin-1 (as Python 3 reads a Python 2 `str` with
    /// `encoding='latin1'`).
    pub fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            PyValue::Str(s) => Some(Cow::Borrowed(s)),
            PyValue::Bytes(b) => Some(Cow::Owned(b.iter().map(|&c| c as char).collect())),
            _ => None,
        }
    }

    /// The items of a list or tuple.
    pub fn items(&self) -> Option<&[PyValue]> {
        match self {
            PyValue::List(v) | PyValue::Tuple(v) => Some(v),
            _ => None,
        }
    }

    /// An integer (`int`, or a `bool` as 0/1).
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            PyValue::Int(v) => Some(v),
            PyValue::Bool(b) => Some(b as i64),
            _ => None,
        }
    }

    /// The array, if this is an ndarray.
    pub fn as_array(&self) -> Option<&NdArray> {
        match self {
            PyValue::Array(a) => Some(a),
            _ => None,
        }
    }

    /// A short name of the value's Python type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            PyValue::None => "None",
            PyValue::Bool(_) => "bool",
            PyValue::Int(_) => "int",
            PyValue::Float(_) => "float",
            PyValue::Str(_) => "str",
            PyValue::Bytes(_) => "bytes",
            PyValue::List(_) => "list",
            PyValue::Tuple(_) => "tuple",
            PyValue::Set(_) => "set",
            PyValue::Dict(_) => "dict",
            PyValue::Array(_) => "ndarray",
            PyValue::Dtype(_) => "dtype",
            PyValue::Global { .. } => "global",
        }
    }
}

/// Reads the pickle at `path`.
pub fn read(path: &Path) -> Result<PyValue> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    from_bytes(&bytes).with_context(|| format!("{} is not a readable pickle", path.display()))
}

/// Reads a pickle from memory.
pub fn from_bytes(bytes: &[u8]) -> Result<PyValue> {
    Machine {
        bytes,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: Vec::new(),
    }
    .run()
}

/// An object on the machine's stack: shared, because the memo refers to the same object and
/// later opcodes (`APPENDS`, `SETITEMS`, `BUILD`) change it in place, as in Python.
type Obj = Rc<RefCell<Node>>;

/// The machine's mutable form of a [`PyValue`].
enum Node {
    Leaf(PyValue),
    List(Vec<Obj>),
    Tuple(Vec<Obj>),
    Set(Vec<Obj>),
    Dict(Vec<(Obj, Obj)>),
}

fn obj(v: PyValue) -> Obj {
    Rc::new(RefCell::new(Node::Leaf(v)))
}

fn node(n: Node) -> Obj {
    Rc::new(RefCell::new(n))
}

/// Turns the machine's object into a value, moving the data where the object is not shared.
fn value(o: Obj) -> PyValue {
    let n = match Rc::try_unwrap(o) {
        Ok(cell) => cell.into_inner(),
        Err(shared) => return value_of(&shared.borrow()),
    };
    match n {
        Node::Leaf(v) => v,
        Node::List(v) => PyValue::List(v.into_iter().map(value).collect()),
        Node::Tuple(v) => PyValue::Tuple(v.into_iter().map(value).collect()),
        Node::Set(v) => PyValue::Set(v.into_iter().map(value).collect()),
        Node::Dict(v) => PyValue::Dict(v.into_iter().map(|(k, x)| (value(k), value(x))).collect()),
    }
}

fn value_of(n: &Node) -> PyValue {
    let all = |v: &[Obj]| v.iter().map(|o| value_of(&o.borrow())).collect();
    match n {
        Node::Leaf(v) => v.clone(),
        Node::List(v) => PyValue::List(all(v)),
        Node::Tuple(v) => PyValue::Tuple(all(v)),
        Node::Set(v) => PyValue::Set(all(v)),
        Node::Dict(v) => PyValue::Dict(
            v.iter()
                .map(|(k, x)| (value_of(&k.borrow()), value_of(&x.borrow())))
                .collect(),
        ),
    }
}

/// The opcode's name in `pickletools`, for error messages.
fn opcode_name(op: u8) -> &'static str {
    match op {
        b'(' => "MARK",
        b'.' => "STOP",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'F' => "FLOAT",
        b'I' => "INT",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'L' => "LONG",
        b'M' => "BININT2",
        b'N' => "NONE",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        b'R' => "REDUCE",
        b'S' => "STRING",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'V' => "UNICODE",
        b'X' => "BINUNICODE",
        b'a' => "APPEND",
        b'b' => "BUILD",
        b'c' => "GLOBAL",
        b'd' => "DICT",
        b'}' => "EMPTY_DICT",
        b'e' => "APPENDS",
        b'g' => "GET",
        b'h' => "BINGET",
        b'i' => "INST",
        b'j' => "LONG_BINGET",
        b'l' => "LIST",
        b']' => "EMPTY_LIST",
        b'o' => "OBJ",
        b'p' => "PUT",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        b's' => "SETITEM",
        b't' => "TUPLE",
        b')' => "EMPTY_TUPLE",
        b'u' => "SETITEMS",
        b'G' => "BINFLOAT",
        0x80 => "PROTO",
        0x81 => "NEWOBJ",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        0x8a => "LONG1",
        0x8b => "LONG4",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        0x8e => "BINBYTES8",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x92 => "NEWOBJ_EX",
        0x93 => "STACK_GLOBAL",
        0x94 => "MEMOIZE",
        0x95 => "FRAME",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => "unknown",
    }
}

struct Machine<'a> {
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<Obj>,
    marks: Vec<usize>,
    memo: Vec<Option<Obj>>,
}

impl Machine<'_> {
    fn run(mut self) -> Result<PyValue> {
        loop {
            let at = self.pos;
            let op = *self.bytes.get(at).with_context(|| {
                format!("the pickle is truncated at offset {at}: it ends without a STOP opcode")
            })?;
            self.pos += 1;
            let done = self.step(op).with_context(|| {
                format!("at opcode {} (0x{op:02x}) at offset {at}", opcode_name(op))
            })?;
            if done {
                let top = self.pop()?;
                // Drop the memo's references so that unshared data moves rather than copies.
                self.memo.clear();
                self.stack.clear();
                return Ok(value(top));
            }
        }
    }

    /// Executes one opcode; true at STOP.
    fn step(&mut self, op: u8) -> Result<bool> {
        match op {
            0x80 => {
                let v = self.take(1)?[0];
                if v > 5 {
                    bail!("pickle protocol {v} is newer than protocol 5");
                }
            }
            0x95 => {
                self.take(8)?;
            }
            b'.' => return Ok(true),
            b'(' => self.marks.push(self.stack.len()),
            b'0' => {
                self.pop()?;
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let top = self.stack.last().context("DUP on an empty stack")?.clone();
                self.stack.push(top);
            }
            b'N' => self.push(PyValue::None),
            0x88 => self.push(PyValue::Bool(true)),
            0x89 => self.push(PyValue::Bool(false)),
            b'I' => {
                let line = self.line()?;
                let v = match line.as_str() {
                    "00" => PyValue::Bool(false),
                    "01" => PyValue::Bool(true),
                    s => PyValue::Int(s.parse().with_context(|| format!("bad INT {s:?}"))?),
                };
                self.push(v);
            }
            b'L' => {
                let line = self.line()?;
                let s = line.trim_end_matches('L');
                let v = s
                    .parse()
                    .with_context(|| format!("LONG {s:?} does not fit in 64 bits"))?;
                self.push(PyValue::Int(v));
            }
            b'J' => {
                let v = i32::from_le_bytes(self.take(4)?.try_into().unwrap());
                self.push(PyValue::Int(v as i64));
            }
            b'K' => {
                let v = self.take(1)?[0];
                self.push(PyValue::Int(v as i64));
            }
            b'M' => {
                let v = u16::from_le_bytes(self.take(2)?.try_into().unwrap());
                self.push(PyValue::Int(v as i64));
            }
            0x8a => {
                let n = self.take(1)?[0] as usize;
                let v = self.long(n)?;
                self.push(PyValue::Int(v));
            }
            0x8b => {
                let n = self.len4()?;
                let v = self.long(n)?;
                self.push(PyValue::Int(v));
            }
            b'F' => {
                let line = self.line()?;
                let v = line
                    .parse()
                    .with_context(|| format!("bad FLOAT {line:?}"))?;
                self.push(PyValue::Float(v));
            }
            b'G' => {
                let v = f64::from_be_bytes(self.take(8)?.try_into().unwrap());
                self.push(PyValue::Float(v));
            }
            b'S' => {
                let line = self.line()?;
                let v = unquote(&line)?;
                self.push(PyValue::Bytes(v));
            }
            b'T' => {
                let n = self.len4()?;
                let v = self.take(n)?.to_vec();
                self.push(PyValue::Bytes(v));
            }
            b'U' | b'C' => {
                let n = self.take(1)?[0] as usize;
                let v = self.take(n)?.to_vec();
                self.push(PyValue::Bytes(v));
            }
            b'B' => {
                let n = self.len4()?;
                let v = self.take(n)?.to_vec();
                self.push(PyValue::Bytes(v));
            }
            0x8e | 0x96 => {
                let n = self.len8()?;
                let v = self.take(n)?.to_vec();
                self.push(PyValue::Bytes(v));
            }
            b'V' => {
                // raw-unicode-escape: characters below 256 are raw latin-1 bytes.
                let line: String = self.line_bytes()?.iter().map(|&b| b as char).collect();
                let v = raw_unicode_escape(&line)?;
                self.push(PyValue::Str(v));
            }
            b'X' => {
                let n = self.len4()?;
                let v = self.utf8(n)?;
                self.push(PyValue::Str(v));
            }
            0x8c => {
                let n = self.take(1)?[0] as usize;
                let v = self.utf8(n)?;
                self.push(PyValue::Str(v));
            }
            0x8d => {
                let n = self.len8()?;
                let v = self.utf8(n)?;
                self.push(PyValue::Str(v));
            }
            0x98 => {}
            b']' => self.stack.push(node(Node::List(Vec::new()))),
            b'l' => {
                let items = self.pop_mark()?;
                self.stack.push(node(Node::List(items)));
            }
            b'}' => self.stack.push(node(Node::Dict(Vec::new()))),
            b'd' => {
                let items = self.pop_mark()?;
                self.stack.push(node(Node::Dict(pairs(items)?)));
            }
            0x8f => self.stack.push(node(Node::Set(Vec::new()))),
            0x91 => {
                let items = self.pop_mark()?;
                self.stack.push(node(Node::Set(items)));
            }
            b')' => self.stack.push(node(Node::Tuple(Vec::new()))),
            b't' => {
                let items = self.pop_mark()?;
                self.stack.push(node(Node::Tuple(items)));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if self.stack.len() < n {
                    bail!("TUPLE{n} needs {n} items on the stack");
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.stack.push(node(Node::Tuple(items)));
            }
            b'a' => {
                let item = self.pop()?;
                self.extend(vec![item])?;
            }
            b'e' | 0x90 => {
                let items = self.pop_mark()?;
                self.extend(items)?;
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.set_items(vec![k, v])?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.set_items(items)?;
            }
            b'p' => {
                let i = self.line()?.parse().context("bad PUT index")?;
                self.put(i)?;
            }
            b'q' => {
                let i = self.take(1)?[0] as usize;
                self.put(i)?;
            }
            b'r' => {
                let i = self.len4()?;
                self.put(i)?;
            }
            0x94 => {
                let i = self.memo.len();
                self.put(i)?;
            }
            b'g' => {
                let i = self.line()?.parse().context("bad GET index")?;
                self.get(i)?;
            }
            b'h' => {
                let i = self.take(1)?[0] as usize;
                self.get(i)?;
            }
            b'j' => {
                let i = self.len4()?;
                self.get(i)?;
            }
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                self.push(PyValue::Global { module, name });
            }
            0x93 => {
                let name = self.pop_text()?;
                let module = self.pop_text()?;
                self.push(PyValue::Global { module, name });
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let result = reduce(&value_of(&callable.borrow()), value(args))?;
                self.stack.push(result);
            }
            b'b' => {
                let state = value(self.pop()?);
                let target = self
                    .stack
                    .last()
                    .context("BUILD on an empty stack")?
                    .clone();
                build(&mut target.borrow_mut(), state)?;
            }
            0x81 | 0x92 => {
                if op == 0x92 {
                    self.pop()?;
                }
                let _args = self.pop()?;
                let cls = value_of(&self.pop()?.borrow());
                bail!(
                    "it creates an object of class {}: only dicts, lists, tuples, numbers, \
                     text, bytes and numpy arrays are read",
                    describe(&cls)
                );
            }
            b'P' | b'Q' => bail!(
                "persistent ids are not supported (the pickle refers to \
                                  objects stored outside it)"
            ),
            0x97 => bail!(
                "out-of-band buffers are not supported: pickle with protocol 4 \
                           or below, or without buffer_callback"
            ),
            b'i' | b'o' | 0x82..=0x84 => bail!(
                "arbitrary Python objects are not supported: only dicts, lists, tuples, \
                 numbers, text, bytes and numpy arrays are read"
            ),
            _ => bail!("unknown opcode: the file is not a pickle, or is corrupt"),
        }
        Ok(false)
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .with_context(|| {
                format!(
                    "the pickle is truncated: {n} bytes wanted at offset {}, {} left",
                    self.pos,
                    self.bytes.len() - self.pos
                )
            })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn len4(&mut self) -> Result<usize> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()) as usize)
    }

    fn len8(&mut self) -> Result<usize> {
        let n = u64::from_le_bytes(self.take(8)?.try_into().unwrap());
        usize::try_from(n).context("length does not fit in memory")
    }

    fn utf8(&mut self, n: usize) -> Result<String> {
        String::from_utf8(self.take(n)?.to_vec()).context("text is not valid UTF-8")
    }

    /// A newline-terminated argument (protocol 0), without the newline.
    fn line_bytes(&mut self) -> Result<&[u8]> {
        let bytes = self.bytes;
        let rest = &bytes[self.pos..];
        let n = rest.iter().position(|&b| b == b'\n').with_context(|| {
            format!(
                "the pickle is truncated at offset {}: a line has no end",
                self.pos
            )
        })?;
        self.pos += n + 1;
        let line = &rest[..n];
        Ok(line.strip_suffix(b"\r").unwrap_or(line))
    }

    /// A newline-terminated text argument (protocol 0).
    fn line(&mut self) -> Result<String> {
        let line = self.line_bytes()?;
        Ok(std::str::from_utf8(line)
            .context("a text argument is not UTF-8")?
            .to_string())
    }

    /// A little-endian two's-complement integer of `n` bytes (LONG1, LONG4).
    fn long(&mut self, n: usize) -> Result<i64> {
        let b = self.take(n)?;
        if n == 0 {
            return Ok(0);
        }
        let negative = b[n - 1] & 0x80 != 0;
        let fill = if negative { 0xff } else { 0 };
        if n > 8 && b[8..].iter().any(|&x| x != fill) {
            bail!("an integer of {n} bytes does not fit in 64 bits");
        }
        let mut buf = [fill; 8];
        let k = n.min(8);
        buf[..k].copy_from_slice(&b[..k]);
        Ok(i64::from_le_bytes(buf))
    }

    fn push(&mut self, v: PyValue) {
        self.stack.push(obj(v));
    }

    fn pop(&mut self) -> Result<Obj> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            bail!("the stack is empty");
        }
        Ok(self.stack.pop().unwrap())
    }

    fn pop_text(&mut self) -> Result<String> {
        let v = value_of(&self.pop()?.borrow());
        v.text()
            .map(Cow::into_owned)
            .context("STACK_GLOBAL needs text for module and name")
    }

    fn pop_mark(&mut self) -> Result<Vec<Obj>> {
        let mark = self.marks.pop().context("no MARK before this opcode")?;
        Ok(self.stack.split_off(mark))
    }

    fn extend(&mut self, items: Vec<Obj>) -> Result<()> {
        let target = self.stack.last().context("APPEND without a list")?;
        match &mut *target.borrow_mut() {
            Node::List(v) | Node::Set(v) => v.extend(items),
            _ => bail!("APPEND or ADDITEMS on something that is not a list or set"),
        }
        Ok(())
    }

    fn set_items(&mut self, items: Vec<Obj>) -> Result<()> {
        let target = self.stack.last().context("SETITEM without a dict")?;
        let new = pairs(items)?;
        match &mut *target.borrow_mut() {
            Node::Dict(v) => {
                for (k, x) in new {
                    // A repeated key replaces the value, as in Python (keys are compared when
                    // they are numbers or text; container keys are taken as distinct).
                    let same = |old: &Obj| match (&*old.borrow(), &*k.borrow()) {
                        (Node::Leaf(a), Node::Leaf(b)) => a == b,
                        _ => false,
                    };
                    match v.iter().position(|(old, _)| same(old)) {
                        Some(i) => v[i].1 = x,
                        None => v.push((k, x)),
                    }
                }
            }
            _ => bail!("SETITEM on something that is not a dict"),
        }
        Ok(())
    }

    fn put(&mut self, i: usize) -> Result<()> {
        let top = self.stack.last().context("PUT on an empty stack")?.clone();
        if i > self.memo.len() + (1 << 20) {
            bail!("memo index {i} is implausibly large");
        }
        if self.memo.len() <= i {
            self.memo.resize(i + 1, None);
        }
        self.memo[i] = Some(top);
        Ok(())
    }

    fn get(&mut self, i: usize) -> Result<()> {
        let o = self.memo.get(i).and_then(|o| o.clone());
        let o = o.with_context(|| format!("memo entry {i} was never stored"))?;
        self.stack.push(o);
        Ok(())
    }
}

fn pairs(items: Vec<Obj>) -> Result<Vec<(Obj, Obj)>> {
    if !items.len().is_multiple_of(2) {
        bail!("a dict needs an even number of items, got {}", items.len());
    }
    let mut it = items.into_iter();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

fn describe(v: &PyValue) -> String {
    match v {
        PyValue::Global { module, name } => format!("{module}.{name}"),
        other => other.type_name().to_string(),
    }
}

/// The modules numpy's pickling functions live in: numpy 1 (and Python 2) write
/// `numpy.core`, numpy 2 writes `numpy._core`.
fn numpy_core(module: &str, sub: &str) -> bool {
    module
        .strip_prefix("numpy.core.")
        .or_else(|| module.strip_prefix("numpy._core."))
        == Some(sub)
}

/// Calls one of the known globals (REDUCE).
fn reduce(callable: &PyValue, args: PyValue) -> Result<Obj> {
    let PyValue::Global { module, name } = callable else {
        bail!(
            "REDUCE calls a {}, not a known function",
            callable.type_name()
        );
    };
    let args = match args {
        PyValue::Tuple(a) => a,
        other => bail!("REDUCE arguments are a {}, not a tuple", other.type_name()),
    };
    let m = module.as_str();
    let n = name.as_str();
    Ok(match (m, n) {
        _ if n == "_reconstruct" && numpy_core(m, "multiarray") => {
            // _reconstruct(ndarray, (0,), b'b'): an empty array that BUILD fills.
            obj(PyValue::Array(NdArray {
                dtype: Dtype {
                    kind: 'u',
                    size: 1,
                    big_endian: false,
                },
                shape: vec![0],
                fortran_order: false,
                data: Vec::new(),
            }))
        }
        ("numpy", "dtype") => {
            let descr = args
                .first()
                .and_then(PyValue::text)
                .context("numpy.dtype needs a name")?;
            if descr == "O8" || descr == "O4" {
                bail!("object arrays (dtype O) are not supported: save numeric arrays");
            }
            obj(PyValue::Dtype(Dtype::parse(&descr)?))
        }
        _ if n == "_frombuffer" && numpy_core(m, "numeric") => {
            let [buf, dtype, shape, order] = <[PyValue; 4]>::try_from(args)
                .map_err(|_| anyhow::anyhow!("_frombuffer needs 4 arguments"))?;
            let (PyValue::Bytes(data), PyValue::Dtype(dtype)) = (buf, dtype) else {
                bail!("_frombuffer needs a buffer and a dtype");
            };
            let fortran_order = order.text().as_deref() == Some("F");
            let array = NdArray {
                dtype,
                shape: shape_of(&shape)?,
                fortran_order,
                data,
            };
            check_size(&array)?;
            obj(PyValue::Array(array))
        }
        _ if n == "scalar" && numpy_core(m, "multiarray") => {
            let (Some(PyValue::Dtype(dtype)), Some(data)) = (args.first(), args.get(1)) else {
                bail!("numpy scalar needs a dtype and its bytes");
            };
            let data = latin1_bytes(data)?;
            let a = NdArray {
                dtype: *dtype,
                shape: vec![],
                fortran_order: false,
                data,
            };
            check_size(&a)?;
            obj(match dtype.kind {
                'f' => PyValue::Float(a.to_f64_vec()?[0]),
                'b' => PyValue::Bool(a.to_i64_vec()?[0] != 0),
                _ => PyValue::Int(a.to_i64_vec()?[0]),
            })
        }
        ("_codecs", "encode") => {
            let text = args
                .first()
                .and_then(PyValue::text)
                .context("encode needs text")?;
            let enc = args.get(1).and_then(PyValue::text);
            match enc.as_deref() {
                Some("latin1" | "latin-1" | "iso-8859-1") => obj(PyValue::Bytes(latin1_bytes(
                    &PyValue::Str(text.into_owned()),
                )?)),
                Some("utf-8" | "utf8") | None => obj(PyValue::Bytes(text.as_bytes().to_vec())),
                Some(e) => bail!("_codecs.encode with encoding {e} is not supported"),
            }
        }
        ("builtins" | "__builtin__", "bytearray" | "bytes") => match args.first() {
            None => obj(PyValue::Bytes(Vec::new())),
            Some(PyValue::Bytes(b)) => obj(PyValue::Bytes(b.clone())),
            Some(PyValue::Str(s)) => obj(PyValue::Bytes(latin1_bytes(&PyValue::Str(s.clone()))?)),
            Some(PyValue::List(v)) => obj(PyValue::Bytes(
                v.iter()
                    .map(|x| x.as_i64().map(|b| b as u8))
                    .collect::<Option<_>>()
                    .context("bytearray from a list needs integers")?,
            )),
            Some(other) => bail!("bytearray from a {} is not supported", other.type_name()),
        },
        ("collections", "OrderedDict") if args.is_empty() => node(Node::Dict(Vec::new())),
        ("builtins" | "__builtin__", "set" | "frozenset") => match args.into_iter().next() {
            None => node(Node::Set(Vec::new())),
            Some(PyValue::List(v) | PyValue::Tuple(v)) => {
                node(Node::Set(v.into_iter().map(obj).collect()))
            }
            Some(other) => bail!("set from a {} is not supported", other.type_name()),
        },
        _ => bail!(
            "the pickle calls {m}.{n}, which this reader does not know: only dicts, lists, \
             tuples, numbers, text, bytes and numpy arrays are read"
        ),
    })
}

/// Bytes from a bytes value, or from text whose characters are all below 256 (a Python 2
/// `str` that Python 3 decoded as latin-1, or `_codecs.encode`'s argument).
fn latin1_bytes(v: &PyValue) -> Result<Vec<u8>> {
    match v {
        PyValue::Bytes(b) => Ok(b.clone()),
        PyValue::Str(s) => s
            .chars()
            .map(|c| u8::try_from(c as u32).ok())
            .collect::<Option<_>>()
            .context("latin-1 text holds a character above U+00FF"),
        other => bail!("expected bytes, got a {}", other.type_name()),
    }
}

fn shape_of(v: &PyValue) -> Result<Vec<usize>> {
    let items = v.items().context("an array shape must be a tuple")?;
    items
        .iter()
        .map(|d| {
            d.as_i64()
                .and_then(|x| usize::try_from(x).ok())
                .context("an array shape must hold non-negative integers")
        })
        .collect()
}

fn check_size(a: &NdArray) -> Result<()> {
    let want = a
        .len()
        .checked_mul(a.dtype.size)
        .context("array too large")?;
    if a.data.len() != want {
        bail!(
            "array of shape {:?} and dtype {} has {} data bytes, not {want}",
            a.shape,
            a.dtype.descr(),
            a.data.len()
        );
    }
    Ok(())
}

/// `BUILD`: sets the state of an array made by `_reconstruct` or of a dtype.
fn build(target: &mut Node, state: PyValue) -> Result<()> {
    let Node::Leaf(target) = target else {
        bail!("BUILD on a container");
    };
    let PyValue::Tuple(s) = state else {
        bail!("BUILD state is a {}, not a tuple", state.type_name());
    };
    match target {
        PyValue::Array(a) => {
            // (version, shape, dtype, is_fortran, data), or without the version (numpy < 1.0).
            let s = if s.len() == 5 { &s[1..] } else { &s[..] };
            let [shape, dtype, fortran, data] = s else {
                bail!("an ndarray state has {} items, not 4 or 5", s.len());
            };
            let PyValue::Dtype(dtype) = dtype else {
                bail!(
                    "an ndarray state holds a {} where the dtype goes",
                    dtype.type_name()
                );
            };
            if matches!(data, PyValue::List(_)) {
                bail!("object arrays (dtype O) are not supported: save numeric arrays");
            }
            *a = NdArray {
                dtype: *dtype,
                shape: shape_of(shape)?,
                fortran_order: fortran.as_i64().context("is_fortran must be a bool")? != 0,
                data: latin1_bytes(data)?,
            };
            check_size(a)
        }
        PyValue::Dtype(d) => {
            // (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
            let order = s
                .get(1)
                .and_then(PyValue::text)
                .context("dtype state has no byte order")?;
            d.big_endian = order == ">";
            if s.get(2).is_some_and(|x| *x != PyValue::None)
                || s.get(3).is_some_and(|x| *x != PyValue::None)
            {
                bail!("structured and sub-array dtypes are not supported");
            }
            Ok(())
        }
        other => bail!(
            "BUILD on a {}: only numpy arrays and dtypes take a state",
            other.type_name()
        ),
    }
}

/// The bytes of a protocol-0 `STRING` argument: a quoted Python literal with escapes.
fn unquote(s: &str) -> Result<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() < 2 || b[0] != b[b.len() - 1] || !matches!(b[0], b'\'' | b'"') {
        bail!("STRING argument {s:?} is not quoted");
    }
    let body = &b[1..b.len() - 1];
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'\\' {
            out.push(body[i]);
            i += 1;
            continue;
        }
        let c = *body.get(i + 1).context("STRING ends in a backslash")?;
        i += 2;
        match c {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'x' => {
                let hex = body.get(i..i + 2).context("short \\x escape")?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex)?, 16)?);
                i += 2;
            }
            b'0'..=b'7' => {
                let mut v = (c - b'0') as u32;
                for _ in 0..2 {
                    match body.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + (d - b'0') as u32;
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// A protocol-0 `UNICODE` argument: raw-unicode-escape (`\uXXXX`, `\UXXXXXXXX`).
fn raw_unicode_escape(s: &str) -> Result<String> {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && matches!(chars.peek(), Some('u' | 'U')) {
            let n = if chars.next() == Some('u') { 4 } else { 8 };
            let hex: String = chars.by_ref().take(n).collect();
            let code = u32::from_str_radix(&hex, 16).context("bad \\u escape")?;
            out.push(char::from_u32(code).context("bad code point")?);
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Writes `value` to `path` as a protocol-2 pickle the way Python 2's `cPickle` does (see
/// [`to_bytes`]), through a temporary file that is renamed when complete.
pub fn write(path: &Path, value: &PyValue) -> Result<()> {
    let bytes = to_bytes(value)?;
    crate::atomic::write_atomic(path, &bytes)
}

/// A protocol-2 pickle of `value` with the opcodes Python 2's `cPickle.dump(v, f, 2)` emits:
/// memo indices from 1, `BINPUT` after dicts, lists, dict keys of 2 or more characters,
/// globals and reduced objects;
/// `APPENDS`/`SETITEMS` in batches of 1000; text and bytes as Python 2 `str`
/// (`SHORT_BINSTRING`/`BINSTRING`; non-ASCII text as `BINUNICODE`); arrays through
/// `numpy.core.multiarray._reconstruct` and `BUILD` with their raw bytes, dtypes through
/// `numpy.dtype`, each dtype pickled once and fetched from the memo after. Python 3 reads it
/// with `encoding='latin1'` (text and bytes then both come back as `str`, as with every
/// Python 2 pickle).
pub fn to_bytes(value: &PyValue) -> Result<Vec<u8>> {
    let mut w = Writer {
        out: vec![0x80, 2],
        next: 1,
        globals: Vec::new(),
        dtypes: Vec::new(),
    };
    w.save(value)?;
    w.out.push(b'.');
    Ok(w.out)
}

struct Writer {
    out: Vec<u8>,
    next: u32,
    globals: Vec<(&'static str, u32)>,
    dtypes: Vec<(Dtype, u32)>,
}

const BATCH: usize = 1000;

impl Writer {
    fn put(&mut self) -> u32 {
        let i = self.next;
        self.next += 1;
        if i < 256 {
            self.out.extend([b'q', i as u8]);
        } else {
            self.out.push(b'r');
            self.out.extend(i.to_le_bytes());
        }
        i
    }

    fn get(&mut self, i: u32) {
        if i < 256 {
            self.out.extend([b'h', i as u8]);
        } else {
            self.out.push(b'j');
            self.out.extend(i.to_le_bytes());
        }
    }

    fn int(&mut self, v: i64) {
        match v {
            0..=0xff => self.out.extend([b'K', v as u8]),
            0x100..=0xffff => {
                self.out.push(b'M');
                self.out.extend((v as u16).to_le_bytes());
            }
            _ if i32::try_from(v).is_ok() => {
                self.out.push(b'J');
                self.out.extend((v as i32).to_le_bytes());
            }
            // cPickle on a 64-bit build writes a long C int as protocol-0 text.
            _ => self.out.extend(format!("I{v}\n").bytes()),
        }
    }

    fn binstring(&mut self, b: &[u8]) {
        if b.len() < 256 {
            self.out.extend([b'U', b.len() as u8]);
        } else {
            self.out.push(b'T');
            self.out.extend((b.len() as u32).to_le_bytes());
        }
        self.out.extend(b);
    }

    fn text(&mut self, s: &str) {
        if s.is_ascii() {
            self.binstring(s.as_bytes());
        } else {
            self.out.push(b'X');
            self.out.extend((s.len() as u32).to_le_bytes());
            self.out.extend(s.bytes());
        }
    }

    fn global(&mut self, qualified: &'static str) {
        if let Some(&(_, i)) = self.globals.iter().find(|(g, _)| *g == qualified) {
            return self.get(i);
        }
        self.out.push(b'c');
        self.out.extend(qualified.bytes());
        self.out.push(b'\n');
        let i = self.put();
        self.globals.push((qualified, i));
    }

    /// Items, then TUPLE1-3 or MARK..TUPLE (empty: EMPTY_TUPLE); tuples are not memoized.
    fn tuple(&mut self, n: usize, mut items: impl FnMut(&mut Self) -> Result<()>) -> Result<()> {
        match n {
            0 => self.out.push(b')'),
            1..=3 => {
                items(self)?;
                self.out.push(0x84 + n as u8);
            }
            _ => {
                self.out.push(b'(');
                items(self)?;
                self.out.push(b't');
            }
        }
        Ok(())
    }

    fn batches<T>(
        &mut self,
        items: &[T],
        one: u8,
        many: u8,
        mut save: impl FnMut(&mut Self, &T) -> Result<()>,
    ) -> Result<()> {
        for chunk in items.chunks(BATCH) {
            if chunk.len() == 1 {
                save(self, &chunk[0])?;
                self.out.push(one);
            } else {
                self.out.push(b'(');
                for x in chunk {
                    save(self, x)?;
                }
                self.out.push(many);
            }
        }
        Ok(())
    }

    fn save(&mut self, v: &PyValue) -> Result<()> {
        match v {
            PyValue::None => self.out.push(b'N'),
            PyValue::Bool(b) => self.out.push(if *b { 0x88 } else { 0x89 }),
            PyValue::Int(i) => self.int(*i),
            PyValue::Float(f) => {
                self.out.push(b'G');
                self.out.extend(f.to_be_bytes());
            }
            PyValue::Str(s) => self.text(s),
            PyValue::Bytes(b) => self.binstring(b),
            PyValue::List(items) => {
                self.out.push(b']');
                self.put();
                self.batches(items, b'a', b'e', Self::save)?;
            }
            PyValue::Tuple(items) => {
                self.tuple(items.len(), |w| items.iter().try_for_each(|x| w.save(x)))?
            }
            PyValue::Dict(items) => {
                self.out.push(b'}');
                self.put();
                self.batches(items, b's', b'u', |w, (k, x)| {
                    w.save(k)?;
                    // cPickle memoizes a key that something else also refers to (a literal),
                    // but never a string shorter than 2.
                    let memoized = match k {
                        PyValue::Str(s) => s.chars().count() >= 2,
                        PyValue::Bytes(b) => b.len() >= 2,
                        _ => false,
                    };
                    if memoized {
                        w.put();
                    }
                    w.save(x)
                })?;
            }
            PyValue::Array(a) => self.array(a)?,
            PyValue::Dtype(d) => self.dtype(*d)?,
            PyValue::Set(_) | PyValue::Global { .. } => {
                bail!("writing a {} is not supported", v.type_name())
            }
        }
        Ok(())
    }

    fn dtype(&mut self, d: Dtype) -> Result<()> {
        if let Some(&(_, i)) = self.dtypes.iter().find(|(x, _)| *x == d) {
            self.get(i);
            return Ok(());
        }
        self.global("numpy\ndtype");
        let name = format!("{}{}", d.kind, d.size);
        self.tuple(3, |w| {
            w.binstring(name.as_bytes());
            w.int(0);
            w.int(1);
            Ok(())
        })?;
        self.out.push(b'R');
        let i = self.put();
        self.dtypes.push((d, i));
        let order = if d.size == 1 {
            "|"
        } else if d.big_endian {
            ">"
        } else {
            "<"
        };
        self.tuple(8, |w| {
            w.int(3);
            w.binstring(order.as_bytes());
            w.out.extend(b"NNN");
            w.out.push(b'J');
            w.out.extend((-1i32).to_le_bytes());
            w.out.push(b'J');
            w.out.extend((-1i32).to_le_bytes());
            w.int(0);
            Ok(())
        })?;
        self.out.push(b'b');
        Ok(())
    }

    fn array(&mut self, a: &NdArray) -> Result<()> {
        check_size(a)?;
        if !matches!(a.dtype.kind, 'f' | 'i' | 'u' | 'b' | 'c') {
            bail!(
                "writing arrays of dtype {} is not supported",
                a.dtype.descr()
            );
        }
        self.global("numpy.core.multiarray\n_reconstruct");
        self.tuple(3, |w| {
            w.global("numpy\nndarray");
            w.tuple(1, |w| {
                w.int(0);
                Ok(())
            })?;
            w.binstring(b"b");
            Ok(())
        })?;
        self.out.push(b'R');
        self.put();
        self.tuple(5, |w| {
            w.int(1);
            w.tuple(a.shape.len(), |w| {
                a.shape.iter().for_each(|&d| w.int(d as i64));
                Ok(())
            })?;
            w.dtype(a.dtype)?;
            w.out.push(if a.fortran_order && a.shape.len() > 1 {
                0x88
            } else {
                0x89
            });
            w.binstring(&a.data);
            Ok(())
        })?;
        self.out.push(b'b');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fortran_big_endian_ints_come_out_in_c_order() {
        // np.asfortranarray(np.arange(6, dtype='>i2').reshape(2, 3)): memory 0 3 1 4 2 5.
        let data: Vec<u8> = [0i16, 3, 1, 4, 2, 5]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let a = NdArray {
            dtype: Dtype::parse(">i2").unwrap(),
            shape: vec![2, 3],
            fortran_order: true,
            data,
        };
        assert_eq!(a.to_i64_vec().unwrap(), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(a.to_f32_vec().unwrap(), vec![0., 1., 2., 3., 4., 5.]);
    }

    #[test]
    fn negative_and_long_integers() {
        let v = PyValue::List(vec![
            PyValue::Int(-1),
            PyValue::Int(300),
            PyValue::Int(70000),
            PyValue::Int(1 << 40),
            PyValue::Int(-(1 << 40)),
        ]);
        assert_eq!(from_bytes(&to_bytes(&v).unwrap()).unwrap(), v);
        // LONG1 as Python 3 writes 2**40 and -2**40.
        let p =
            b"\x80\x02]q\x00(\x8a\x06\x00\x00\x00\x00\x00\x01\x8a\x06\x00\x00\x00\x00\x00\xffe.";
        assert_eq!(
            from_bytes(p).unwrap(),
            PyValue::List(vec![PyValue::Int(1 << 40), PyValue::Int(-(1 << 40))])
        );
    }

    #[test]
    fn protocol_0_string_escapes() {
        assert_eq!(
            unquote(r"'\x81\x01a\'\n'").unwrap(),
            b"\x81\x01a'\n".to_vec()
        );
    }

    #[test]
    fn shared_list_sees_later_appends() {
        // l = []; pickle.dumps((l, l), 2) after l.append(1) is written as
        // EMPTY_LIST BINPUT 1 ... but a GET made after the APPEND must see the item.
        let p = b"\x80\x02]q\x01K\x07ah\x01\x86.";
        assert_eq!(
            from_bytes(p).unwrap(),
            PyValue::Tuple(vec![
                PyValue::List(vec![PyValue::Int(7)]),
                PyValue::List(vec![PyValue::Int(7)])
            ])
        );
    }

    #[test]
    fn half_precision() {
        assert_eq!(f16_to_f64(0x3c00), 1.0);
        assert_eq!(f16_to_f64(0xc000), -2.0);
        assert_eq!(f16_to_f64(0x0001), 2f64.powi(-24));
    }
}

//! MATLAB level-5 (v5/v7) MAT-file reader for the numeric and cell arrays that py-faster-rcnn's
//! proposals, NYUv2's `splits.mat` and `vocab40.mat` hold.
//!
//! A file is a 128-byte header (text, subsystem offset, version `0x0100`, endian indicator
//! `IM` or `MI`) followed by data elements. Each element is a tag (type, byte count; or the
//! small-element form that packs both into 4 bytes and the data into the next 4) and its data,
//! padded to 8 bytes. `miCOMPRESSED` elements hold a zlib stream of further elements;
//! `miMATRIX` elements hold one variable: array flags (class, logical and complex bits),
//! dimensions, name, then the class's data. Read here: numeric classes (double, single,
//! int8-64, uint8-64), logical, char, cell and struct arrays. Complex, sparse and object
//! arrays are an error naming the variable. v7.3 files are HDF5 and are refused with that said.
//!
//! Dimensions are reported as MATLAB gives them and data is column-major, as stored;
//! [`row_major`] reorders it.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// A MATLAB numeric class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatClass {
    /// `double`.
    Double,
    /// `single`.
    Single,
    /// `int8`.
    Int8,
    /// `uint8`.
    UInt8,
    /// `int16`.
    Int16,
    /// `uint16`.
    UInt16,
    /// `int32`.
    Int32,
    /// `uint32`.
    UInt32,
    /// `int64`.
    Int64,
    /// `uint64`.
    UInt64,
    /// `logical` (stored as uint8 with the logical flag).
    Logical,
}

/// A numeric or logical array's elements, column-major, in the class's own type.
#[derive(Clone, Debug, PartialEq)]
pub enum MatData {
    /// `double` elements.
    F64(Vec<f64>),
    /// `single` elements.
    F32(Vec<f32>),
    /// Elements of the integer classes up to `uint32` and `int64`.
    I64(Vec<i64>),
    /// `uint64` elements.
    U64(Vec<u64>),
    /// `logical` elements.
    Bool(Vec<bool>),
}

/// A numeric or logical MATLAB array.
#[derive(Clone, Debug, PartialEq)]
pub struct MatArray {
    /// The MATLAB class.
    pub class: MatClass,
    /// The dimensions as MATLAB reports them (at least 2).
    pub dims: Vec<usize>,
    /// The elements, column-major.
    pub data: MatData,
}

impl MatArray {
    /// The elements as f64, column-major (uint64 and int64 beyond 2^53 round).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match &self.data {
            MatData::F64(v) => v.clone(),
            MatData::F32(v) => v.iter().map(|&x| x as f64).collect(),
            MatData::I64(v) => v.iter().map(|&x| x as f64).collect(),
            MatData::U64(v) => v.iter().map(|&x| x as f64).collect(),
            MatData::Bool(v) => v.iter().map(|&x| x as u8 as f64).collect(),
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A MATLAB variable.
#[derive(Clone, Debug, PartialEq)]
pub enum MatValue {
    /// A numeric or logical array.
    Numeric(MatArray),
    /// A char array: UTF-16 code units, column-major.
    Char {
        /// The dimensions as MATLAB reports them.
        dims: Vec<usize>,
        /// The characters, column-major.
        units: Vec<u16>,
    },
    /// A cell array.
    Cell {
        /// The dimensions as MATLAB reports them.
        dims: Vec<usize>,
        /// The cells, column-major.
        cells: Vec<MatValue>,
    },
    /// A struct array.
    Struct {
        /// The dimensions as MATLAB reports them.
        dims: Vec<usize>,
        /// The field names in file order.
        fields: Vec<String>,
        /// One map of field values per element, column-major.
        elements: Vec<BTreeMap<String, MatValue>>,
    },
}

impl MatValue {
    /// The rows of a char array as strings (a 1xN char array gives one string). MATLAB pads
    /// the rows of a char matrix with spaces; they are kept.
    pub fn char_rows(&self) -> Option<Vec<String>> {
        let MatValue::Char { dims, units } = self else {
            return None;
        };
        let rows = dims.first().copied().unwrap_or(0);
        let cols = units.len().checked_div(rows).unwrap_or(0);
        Some(
            (0..rows)
                .map(|r| {
                    let row: Vec<u16> = (0..cols).map(|c| units[c * rows + r]).collect();
                    String::from_utf16_lossy(&row)
                })
                .collect(),
        )
    }

    /// The text of a char row vector (or of an empty char array: "").
    pub fn text(&self) -> Option<String> {
        match self {
            MatValue::Char { units, .. } if units.is_empty() => Some(String::new()),
            MatValue::Char { dims, units } if dims.first() == Some(&1) => {
                Some(String::from_utf16_lossy(units))
            }
            _ => None,
        }
    }

    /// The numeric array, if this is one.
    pub fn numeric(&self) -> Option<&MatArray> {
        match self {
            MatValue::Numeric(a) => Some(a),
            _ => None,
        }
    }

    /// The dimensions as MATLAB reports them.
    pub fn dims(&self) -> &[usize] {
        match self {
            MatValue::Numeric(a) => &a.dims,
            MatValue::Char { dims, .. }
            | MatValue::Cell { dims, .. }
            | MatValue::Struct { dims, .. } => dims,
        }
    }

    /// A short name of the value's MATLAB class, for error messages.
    pub fn class_name(&self) -> &'static str {
        match self {
            MatValue::Numeric(_) => "numeric",
            MatValue::Char { .. } => "char",
            MatValue::Cell { .. } => "cell",
            MatValue::Struct { .. } => "struct",
        }
    }
}

/// Reorders column-major `data` of MATLAB dimensions `dims` into row-major (C) order, i.e. the
/// layout of a numpy array of shape `dims` (what `scipy.io.loadmat` returns).
pub fn row_major<T: Copy>(data: &[T], dims: &[usize]) -> Vec<T> {
    let n: usize = dims.iter().product();
    if dims.len() < 2 || n == 0 {
        return data.to_vec();
    }
    let mut strides = vec![1usize; dims.len()];
    for k in 1..dims.len() {
        strides[k] = strides[k - 1] * dims[k - 1];
    }
    let mut index = vec![0usize; dims.len()];
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(
            data[index
                .iter()
                .zip(&strides)
                .map(|(i, s)| i * s)
                .sum::<usize>()],
        );
        for k in (0..dims.len()).rev() {
            index[k] += 1;
            if index[k] < dims[k] {
                break;
            }
            index[k] = 0;
        }
    }
    out
}

const HDF5_SIGNATURE: &[u8] = b"\x89HDF\r\n\x1a\n";

/// Reads every variable of the MAT-file at `path`, by name.
pub fn read(path: &Path) -> Result<BTreeMap<String, MatValue>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    from_bytes(&bytes).with_context(|| format!("{} is not a readable MAT-file", path.display()))
}

/// Reads every variable of a MAT-file in memory, by name.
pub fn from_bytes(bytes: &[u8]) -> Result<BTreeMap<String, MatValue>> {
    if bytes.len() < 128 {
        bail!(
            "the file has {} bytes, shorter than a MAT-file header (128)",
            bytes.len()
        );
    }
    if bytes.starts_with(b"MATLAB 7.3 MAT-file")
        || bytes.get(512..520) == Some(HDF5_SIGNATURE)
        || bytes.starts_with(HDF5_SIGNATURE)
    {
        bail!(
            "this is a MATLAB v7.3 MAT-file, which is HDF5: read it with an HDF5 reader \
             (the `hdf5` crate, or h5py), or re-save it in MATLAB with save(FILE, '-v7')"
        );
    }
    if !bytes.starts_with(b"MATLAB 5.0 MAT-file") && !bytes[..116].is_ascii() {
        bail!("no MATLAB 5.0 header text: this is not a level-5 MAT-file (v4 files are not read)");
    }
    let big_endian = match &bytes[126..128] {
        b"IM" => false,
        b"MI" => true,
        other => bail!("bad endian indicator {other:?} at offset 126 (want IM or MI)"),
    };
    let e = Endian(big_endian);
    let version = e.u16(&bytes[124..126]);
    if version != 0x0100 {
        bail!("MAT-file version 0x{version:04x} is not 0x0100");
    }
    let mut vars = BTreeMap::new();
    read_elements(&bytes[128..], 128, e, &mut vars)?;
    Ok(vars)
}

/// Reads the top-level elements of `buf` (at file offset `base`) into `vars`.
fn read_elements(
    buf: &[u8],
    base: usize,
    e: Endian,
    vars: &mut BTreeMap<String, MatValue>,
) -> Result<()> {
    let mut pos = 0;
    while pos < buf.len() {
        if buf.len() - pos < 8 && buf[pos..].iter().all(|&b| b == 0) {
            break;
        }
        let el = element(buf, pos, e).with_context(|| format!("at offset {}", base + pos))?;
        match el.kind {
            MI_COMPRESSED => {
                let mut inflated = Vec::new();
                flate2::read::ZlibDecoder::new(el.data)
                    .read_to_end(&mut inflated)
                    .with_context(|| {
                        format!(
                            "the compressed element at offset {} does not inflate",
                            base + pos
                        )
                    })?;
                read_elements(&inflated, 0, e, vars).with_context(|| {
                    format!("in the compressed element at offset {}", base + pos)
                })?;
            }
            MI_MATRIX => {
                let (name, value) = matrix(el.data, e)
                    .with_context(|| format!("in the variable at offset {}", base + pos))?;
                vars.insert(name, value);
            }
            k => bail!(
                "a top-level element of type {k} at offset {}: want miMATRIX or miCOMPRESSED",
                base + pos
            ),
        }
        pos = el.next;
    }
    Ok(())
}

const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
const MI_UTF8: u32 = 16;
const MI_UTF16: u32 = 17;
const MI_UTF32: u32 = 18;

#[derive(Clone, Copy)]
struct Endian(bool);

impl Endian {
    fn u16(self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        if self.0 {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        }
    }
    fn u32(self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        if self.0 {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }
    fn u64(self, b: &[u8]) -> u64 {
        let a: [u8; 8] = b[..8].try_into().unwrap();
        if self.0 {
            u64::from_be_bytes(a)
        } else {
            u64::from_le_bytes(a)
        }
    }
}

struct Element<'a> {
    kind: u32,
    data: &'a [u8],
    /// Offset of the next element in the same buffer.
    next: usize,
}

/// The element whose tag starts at `pos`.
fn element(buf: &[u8], pos: usize, e: Endian) -> Result<Element<'_>> {
    let tag = buf.get(pos..pos + 8).context("truncated element tag")?;
    let first = e.u32(&tag[..4]);
    if first >> 16 != 0 {
        // Small data element: 2 bytes of size, 2 of type, then up to 4 bytes of data.
        let n = (first >> 16) as usize;
        if n > 4 {
            bail!("a small data element claims {n} bytes (at most 4)");
        }
        return Ok(Element {
            kind: first & 0xffff,
            data: &tag[4..4 + n],
            next: pos + 8,
        });
    }
    let n = e.u32(&tag[4..]) as usize;
    let start = pos + 8;
    let data = buf.get(start..start + n).with_context(|| {
        format!(
            "the file is truncated: an element of {n} bytes has {} left",
            buf.len() - start
        )
    })?;
    // miCOMPRESSED data is not padded; every other element is padded to 8 bytes.
    let next = if first == MI_COMPRESSED {
        start + n
    } else {
        start + n.div_ceil(8) * 8
    };
    Ok(Element {
        kind: first,
        data,
        next: next.min(buf.len()),
    })
}

/// The sub-elements of a miMATRIX, in order.
fn sub_elements(buf: &[u8], e: Endian) -> Result<Vec<Element<'_>>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let el = element(buf, pos, e)?;
        pos = el.next;
        out.push(el);
    }
    Ok(out)
}

const MX_CELL: u32 = 1;
const MX_STRUCT: u32 = 2;
const MX_OBJECT: u32 = 3;
const MX_CHAR: u32 = 4;
const MX_SPARSE: u32 = 5;

/// A miMATRIX element's name and value.
fn matrix(buf: &[u8], e: Endian) -> Result<(String, MatValue)> {
    if buf.is_empty() {
        // MATLAB writes an unset cell as an empty miMATRIX: a 0x0 double.
        let empty = MatArray {
            class: MatClass::Double,
            dims: vec![0, 0],
            data: MatData::F64(vec![]),
        };
        return Ok((String::new(), MatValue::Numeric(empty)));
    }
    let els = sub_elements(buf, e)?;
    let [flags, dims, name, rest @ ..] = &els[..] else {
        bail!("a matrix element lacks its flags, dimensions or name");
    };
    if flags.data.len() < 8 {
        bail!("array flags are {} bytes, not 8", flags.data.len());
    }
    let f = e.u32(&flags.data[..4]);
    let class = f & 0xff;
    let complex = f & 0x0800 != 0;
    let logical = f & 0x0200 != 0;
    let dims: Vec<usize> = numbers(dims, e)?
        .into_iter()
        .map(|d| usize::try_from(d.i64()).context("negative dimension"))
        .collect::<Result<_>>()?;
    let name = String::from_utf8(name.data.to_vec()).context("variable name is not text")?;
    let n: usize = dims.iter().product();
    let named = |r: Result<MatValue>| r.with_context(|| format!("variable {name:?}"));
    let value = match class {
        MX_CELL => named((|| {
            if rest.len() != n {
                bail!("a {dims:?} cell array holds {} cells", rest.len());
            }
            let cells = rest
                .iter()
                .map(|el| {
                    if el.kind != MI_MATRIX {
                        bail!("a cell is an element of type {}, not miMATRIX", el.kind);
                    }
                    Ok(matrix(el.data, e)?.1)
                })
                .collect::<Result<_>>()?;
            Ok(MatValue::Cell {
                dims: dims.clone(),
                cells,
            })
        })())?,
        MX_STRUCT => named(structure(&dims, rest, e))?,
        MX_CHAR => named((|| {
            let data = rest.first().context("a char array has no data")?;
            let units: Vec<u16> = match data.kind {
                MI_UTF8 => std::str::from_utf8(data.data)?.encode_utf16().collect(),
                MI_UINT16 | MI_UTF16 => data.data.chunks_exact(2).map(|c| e.u16(c)).collect(),
                MI_UINT8 | MI_INT8 => data.data.iter().map(|&b| b as u16).collect(),
                MI_UTF32 => {
                    let s: String = data
                        .data
                        .chunks_exact(4)
                        .map(|c| char::from_u32(e.u32(c)).unwrap_or('\u{fffd}'))
                        .collect();
                    s.encode_utf16().collect()
                }
                k => bail!("char data of element type {k}"),
            };
            if units.len() != n {
                bail!("a {dims:?} char array holds {} characters", units.len());
            }
            Ok(MatValue::Char {
                dims: dims.clone(),
                units,
            })
        })())?,
        MX_SPARSE => bail!("variable {name:?} is a sparse matrix, which is not read: save it full"),
        MX_OBJECT => bail!("variable {name:?} is a MATLAB object, which is not read"),
        6..=15 => named((|| {
            if complex {
                bail!("complex arrays are not read");
            }
            let real = rest.first().context("a numeric array has no data")?;
            let values = numbers(real, e)?;
            if values.len() != n {
                bail!("a {dims:?} array holds {} values", values.len());
            }
            let (class, data) = typed(class, logical, values);
            Ok(MatValue::Numeric(MatArray {
                class,
                dims: dims.clone(),
                data,
            }))
        })())?,
        c => bail!("variable {name:?} has MATLAB class {c}, which is not read"),
    };
    Ok((name, value))
}

fn structure(dims: &[usize], rest: &[Element<'_>], e: Endian) -> Result<MatValue> {
    let [len, names, values @ ..] = rest else {
        bail!("a struct lacks its field-name length or names");
    };
    let width = numbers(len, e)?
        .first()
        .context("no field-name length")?
        .i64() as usize;
    if width == 0 {
        bail!("field-name length 0");
    }
    let fields: Vec<String> = names
        .data
        .chunks(width)
        .map(|c| String::from_utf8_lossy(c.split(|&b| b == 0).next().unwrap_or(&[])).into_owned())
        .collect();
    let n: usize = dims.iter().product();
    if values.len() != n * fields.len() {
        bail!(
            "a {dims:?} struct with {} fields holds {} values",
            fields.len(),
            values.len()
        );
    }
    let mut elements = Vec::with_capacity(n);
    for chunk in values.chunks(fields.len().max(1)).take(n) {
        let mut map = BTreeMap::new();
        for (field, el) in fields.iter().zip(chunk) {
            if el.kind != MI_MATRIX {
                bail!(
                    "field {field:?} is an element of type {}, not miMATRIX",
                    el.kind
                );
            }
            let v = matrix(el.data, e)
                .with_context(|| format!("field {field:?}"))?
                .1;
            map.insert(field.clone(), v);
        }
        elements.push(map);
    }
    Ok(MatValue::Struct {
        dims: dims.to_vec(),
        fields,
        elements,
    })
}

/// A stored number, in the widest type that holds it exactly.
#[derive(Clone, Copy)]
enum Num {
    F(f64),
    I(i64),
    U(u64),
}

impl Num {
    fn f64(self) -> f64 {
        match self {
            Num::F(v) => v,
            Num::I(v) => v as f64,
            Num::U(v) => v as f64,
        }
    }

    fn i64(self) -> i64 {
        match self {
            Num::F(v) => v as i64,
            Num::I(v) => v,
            Num::U(v) => v as i64,
        }
    }

    fn u64(self) -> u64 {
        match self {
            Num::F(v) => v as u64,
            Num::I(v) => v as u64,
            Num::U(v) => v,
        }
    }
}

/// The numbers of a numeric data element (the stored type may be narrower than the class:
/// MATLAB stores a double array of small integers as miUINT8, for example).
fn numbers(el: &Element<'_>, e: Endian) -> Result<Vec<Num>> {
    type Decode = fn(&[u8], Endian) -> Num;
    let d = el.data;
    let (size, f): (usize, Decode) = match el.kind {
        MI_INT8 => (1, |b, _| Num::I(b[0] as i8 as i64)),
        MI_UINT8 => (1, |b, _| Num::U(b[0] as u64)),
        MI_INT16 => (2, |b, e| Num::I(e.u16(b) as i16 as i64)),
        MI_UINT16 => (2, |b, e| Num::U(e.u16(b) as u64)),
        MI_INT32 => (4, |b, e| Num::I(e.u32(b) as i32 as i64)),
        MI_UINT32 => (4, |b, e| Num::U(e.u32(b) as u64)),
        MI_INT64 => (8, |b, e| Num::I(e.u64(b) as i64)),
        MI_UINT64 => (8, |b, e| Num::U(e.u64(b))),
        MI_SINGLE => (4, |b, e| Num::F(f32::from_bits(e.u32(b)) as f64)),
        MI_DOUBLE => (8, |b, e| Num::F(f64::from_bits(e.u64(b)))),
        k => bail!("numeric data of element type {k}"),
    };
    if !d.len().is_multiple_of(size) {
        bail!(
            "{} bytes of data is not a whole number of {size}-byte values",
            d.len()
        );
    }
    Ok(d.chunks_exact(size).map(|c| f(c, e)).collect())
}

/// Converts stored numbers to the class's element type.
fn typed(class: u32, logical: bool, values: Vec<Num>) -> (MatClass, MatData) {
    if logical {
        return (
            MatClass::Logical,
            MatData::Bool(values.iter().map(|v| v.f64() != 0.0).collect()),
        );
    }
    let ints = |v: &[Num]| MatData::I64(v.iter().map(|x| x.i64()).collect());
    match class {
        6 => (
            MatClass::Double,
            MatData::F64(values.iter().map(|v| v.f64()).collect()),
        ),
        7 => (
            MatClass::Single,
            MatData::F32(values.iter().map(|v| v.f64() as f32).collect()),
        ),
        8 => (MatClass::Int8, ints(&values)),
        9 => (MatClass::UInt8, ints(&values)),
        10 => (MatClass::Int16, ints(&values)),
        11 => (MatClass::UInt16, ints(&values)),
        12 => (MatClass::Int32, ints(&values)),
        13 => (MatClass::UInt32, ints(&values)),
        14 => (MatClass::Int64, ints(&values)),
        _ => (
            MatClass::UInt64,
            MatData::U64(values.iter().map(|v| v.u64()).collect()),
        ),
    }
}

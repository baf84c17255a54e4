//! Tensors in and out as safetensors files, with PyTorch's names: a `state_dict` saved by
//! `safetensors.torch.save_file(lstm.state_dict(), path)` loads as is, and what we save loads
//! back into PyTorch.

use crate::error::{fmt_shape, Error, Result};
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;
#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;

#[cfg(not(target_arch = "wasm32"))]
mod atomic;
mod state_dict;

#[cfg(not(target_arch = "wasm32"))]
pub use atomic::write_atomically;

/// The values of a host tensor, in the file's type.
#[derive(Debug, Clone, PartialEq)]
pub enum HostData {
    /// float32.
    F32(Vec<f32>),
    /// float64.
    F64(Vec<f64>),
    /// int32.
    I32(Vec<i32>),
    /// int64.
    I64(Vec<i64>),
}

/// A tensor on the host: a shape and row-major values.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// The shape.
    pub shape: Vec<usize>,
    /// The values.
    pub data: HostData,
}

impl HostTensor {
    /// An f32 tensor.
    pub fn f32(shape: &[usize], data: Vec<f32>) -> HostTensor {
        HostTensor {
            shape: shape.to_vec(),
            data: HostData::F32(data),
        }
    }

    /// The values as f32, which weights and inputs must be; `name` goes into the error.
    pub fn as_f32(&self, name: &str) -> Result<&[f32]> {
        match &self.data {
            HostData::F32(v) => Ok(v),
            _ => Err(Error::Invalid(format!(
                "tensor `{name}` is {}, expected float32 (in PyTorch: `.float()` before saving)",
                self.dtype_name()
            ))),
        }
    }

    /// Integer values (int32 or int64) as usize, e.g. sequence lengths.
    pub fn as_indices(&self, name: &str) -> Result<Vec<usize>> {
        let bad =
            |v: i64| Error::Invalid(format!("tensor `{name}` holds {v}, expected values ≥ 0"));
        let convert = |v: i64| usize::try_from(v).map_err(|_| bad(v));
        match &self.data {
            HostData::I32(v) => v.iter().map(|&x| convert(x as i64)).collect(),
            HostData::I64(v) => v.iter().map(|&x| convert(x)).collect(),
            _ => Err(Error::Invalid(format!(
                "tensor `{name}` is {}, expected int32 or int64",
                self.dtype_name()
            ))),
        }
    }

    /// Values converted to f64 whatever the file's type (for comparisons).
    pub fn to_f64(&self) -> Vec<f64> {
        match &self.data {
            HostData::F32(v) => v.iter().map(|&x| x as f64).collect(),
            HostData::F64(v) => v.clone(),
            HostData::I32(v) => v.iter().map(|&x| x as f64).collect(),
            HostData::I64(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }

    fn dtype_name(&self) -> &'static str {
        match self.data {
            HostData::F32(_) => "float32",
            HostData::F64(_) => "float64",
            HostData::I32(_) => "int32",
            HostData::I64(_) => "int64",
        }
    }

    fn len(&self) -> usize {
        match &self.data {
            HostData::F32(v) => v.len(),
            HostData::F64(v) => v.len(),
            HostData::I32(v) => v.len(),
            HostData::I64(v) => v.len(),
        }
    }

    fn bytes(&self) -> (Dtype, Vec<u8>) {
        match &self.data {
            HostData::F32(v) => (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            HostData::F64(v) => (Dtype::F64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            HostData::I32(v) => (Dtype::I32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            HostData::I64(v) => (Dtype::I64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        }
    }
}

/// Named tensors, sorted by name.
pub type TensorMap = BTreeMap<String, HostTensor>;

/// Free-form string metadata of a safetensors file (its `__metadata__`).
pub type Metadata = std::collections::HashMap<String, String>;

/// Parses safetensors bytes. Malformed files (truncated, lying header sizes, dtypes this crate
/// does not handle) are errors naming the problem.
pub fn parse_tensors(bytes: &[u8], source: &str) -> Result<TensorMap> {
    Ok(parse_tensors_with_metadata(bytes, source)?.0)
}

/// Like [`parse_tensors`], also returning the file's metadata.
pub fn parse_tensors_with_metadata(bytes: &[u8], source: &str) -> Result<(TensorMap, Metadata)> {
    let invalid = |e: safetensors::SafeTensorError| {
        Error::Invalid(format!("{source}: not a valid safetensors file: {e}"))
    };
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(invalid)?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let file = SafeTensors::deserialize(bytes).map_err(invalid)?;
    let checked = metadata.keys().any(|k| k.starts_with(CHECKSUM_PREFIX));
    let mut out = TensorMap::new();
    for (name, view) in file.iter() {
        let raw = view.data();
        if checked {
            verify_checksum(&metadata, name, raw, source)?;
        }
        let shape = view.shape().to_vec();
        let data = match view.dtype() {
            Dtype::F32 => HostData::F32(
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4])))
                    .collect(),
            ),
            Dtype::F64 => HostData::F64(
                raw.chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect(),
            ),
            Dtype::I32 => HostData::I32(
                raw.chunks_exact(4)
                    .map(|c| i32::from_le_bytes(c.try_into().unwrap_or([0; 4])))
                    .collect(),
            ),
            Dtype::I64 => HostData::I64(
                raw.chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect(),
            ),
            other => {
                return Err(Error::Invalid(format!(
                    "{source}: tensor `{name}` has dtype {other:?}; supported: F32, F64, I32, I64"
                )))
            }
        };
        out.insert(name.to_string(), HostTensor { shape, data });
    }
    Ok((out, metadata))
}

/// Metadata key prefix of the CRC-32 of each tensor's bytes, which every file written here
/// carries: a file with them is checked on reading (a flipped byte is an error naming the
/// tensor); files without them (a plain PyTorch state dict) load as they are.
pub const CHECKSUM_PREFIX: &str = "crc32.";

fn verify_checksum(metadata: &Metadata, name: &str, raw: &[u8], source: &str) -> Result<()> {
    let key = format!("{CHECKSUM_PREFIX}{name}");
    let Some(want) = metadata.get(&key) else {
        return Err(Error::Invalid(format!(
            "{source}: tensor `{name}` has no checksum while the others have: the file was altered"
        )));
    };
    let got = format!("{:08x}", crc32fast::hash(raw));
    if *want != got {
        return Err(Error::Invalid(format!(
            "{source}: tensor `{name}` is corrupted (CRC-32 {got}, the file says {want}); \
             restore the file from a copy"
        )));
    }
    Ok(())
}

/// Reads a safetensors file.
#[cfg(not(target_arch = "wasm32"))]
pub fn read_tensors(path: &Path) -> Result<TensorMap> {
    Ok(read_tensors_with_metadata(path)?.0)
}

/// Reads a safetensors file and its metadata.
#[cfg(not(target_arch = "wasm32"))]
pub fn read_tensors_with_metadata(path: &Path) -> Result<(TensorMap, Metadata)> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_tensors_with_metadata(&bytes, &path.display().to_string())
}

/// Serializes tensors to safetensors bytes.
pub fn serialize_tensors(tensors: &TensorMap) -> Result<Vec<u8>> {
    serialize_tensors_with_metadata(tensors, None)
}

/// Serializes tensors and metadata to safetensors bytes, with the CRC-32 of every tensor in
/// the metadata (see [`CHECKSUM_PREFIX`]).
pub fn serialize_tensors_with_metadata(
    tensors: &TensorMap,
    metadata: Option<Metadata>,
) -> Result<Vec<u8>> {
    let mut metadata = metadata.unwrap_or_default();
    let mut owned = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let expected: usize = t.shape.iter().product();
        if expected != t.len() {
            return Err(Error::Shape {
                tensor: name.clone(),
                expected: format!("{} values for shape {}", expected, fmt_shape(&t.shape)),
                given: format!("{} values", t.len()),
            });
        }
        let (dtype, bytes) = t.bytes();
        metadata.insert(
            format!("{CHECKSUM_PREFIX}{name}"),
            format!("{:08x}", crc32fast::hash(&bytes)),
        );
        owned.push((name.clone(), t.shape.clone(), (dtype, bytes)));
    }
    let views = owned
        .iter()
        .map(|(name, shape, (dtype, bytes))| {
            safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::Invalid(format!("tensor `{name}`: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    // safetensors 0.8 writes a malformed header for metadata without tensors: leave it out
    // then (there is nothing to check).
    let metadata = (!views.is_empty()).then_some(metadata);
    safetensors::serialize(views, metadata).map_err(|e| Error::Invalid(e.to_string()))
}

/// Writes tensors to a safetensors file atomically: a temporary file in the same folder,
/// flushed, then renamed over `path`, so an interrupted write never leaves a partial file and
/// never destroys what `path` held.
#[cfg(not(target_arch = "wasm32"))]
pub fn write_tensors(path: &Path, tensors: &TensorMap) -> Result<()> {
    write_atomically(path, &serialize_tensors(tensors)?)
}

/// Like [`write_tensors`], with metadata.
#[cfg(not(target_arch = "wasm32"))]
pub fn write_tensors_with_metadata(
    path: &Path,
    tensors: &TensorMap,
    metadata: Metadata,
) -> Result<()> {
    write_atomically(
        path,
        &serialize_tensors_with_metadata(tensors, Some(metadata))?,
    )
}

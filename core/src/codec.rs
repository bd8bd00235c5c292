//! A trained model as one safetensors blob: weights, id maps, per-user seen lists and item
//! popularity, with the model spec in the header metadata. PyTorch reads it with
//! `safetensors.torch.load(blob)`; text ids are stored as UTF-8 bytes plus offsets.

use crate::ids::{IdKind, IdMap};
use crate::spec::ModelSpec;
use anyhow::{anyhow, bail, Context, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::{BTreeMap, HashMap};

/// Format tag written into every blob; bump on incompatible change.
pub const FORMAT: &str = "neumf/1";

/// Header metadata key of the blob's CRC-32: 8 hex digits, computed over the whole blob with
/// those digits as "00000000", so it covers the header (spec, id types, tensor offsets) as well
/// as the data. Blobs written before checksums existed lack it and are read unchecked.
const CHECKSUM_FIELD: &[u8] = b"\"crc32\":\"";
const CHECKSUM_PLACEHOLDER: &[u8; 8] = b"00000000";

/// Where the checksum's 8 hex digits sit in `blob`, if its header has the field.
fn checksum_position(blob: &[u8]) -> Option<usize> {
    let header_len = u64::from_le_bytes(blob.get(..8)?.try_into().ok()?);
    let header = blob.get(8..8usize.checked_add(usize::try_from(header_len).ok()?)?)?;
    // In compact JSON the key can only appear as a key: inside string values quotes are escaped.
    let at = header.windows(CHECKSUM_FIELD.len()).position(|w| w == CHECKSUM_FIELD)?;
    Some(8 + at + CHECKSUM_FIELD.len())
}

fn crc32_with_placeholder(blob: &[u8], digits_at: usize) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&blob[..digits_at]);
    hasher.update(CHECKSUM_PLACEHOLDER);
    hasher.update(&blob[digits_at + 8..]);
    hasher.finalize()
}

/// Writes the checksum of a blob encoded with the placeholder in its header (also used by the
/// fuzzer, to reach the decoder's deeper checks with damaged content under a valid checksum).
pub fn seal_checksum(blob: &mut [u8]) -> Result<()> {
    let at = checksum_position(blob).filter(|&at| at + 8 <= blob.len()).context("blob has no checksum field")?;
    let digits = format!("{:08x}", crc32_with_placeholder(blob, at));
    blob[at..at + 8].copy_from_slice(digits.as_bytes());
    Ok(())
}

/// Checks the blob's checksum; Ok for blobs written before checksums existed.
pub fn verify_checksum(blob: &[u8]) -> Result<()> {
    let Some(at) = checksum_position(blob) else { return Ok(()) };
    let stored = blob
        .get(at..at + 8)
        .and_then(|d| std::str::from_utf8(d).ok())
        .and_then(|d| u32::from_str_radix(d, 16).ok())
        .context("stored model's checksum field is damaged")?;
    let computed = crc32_with_placeholder(blob, at);
    if stored != computed {
        bail!("stored model fails its checksum (CRC-32): its bytes changed after it was written");
    }
    Ok(())
}

/// A dense f32 tensor on the host, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor32 {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor32 {
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }
    pub fn cols(&self) -> usize {
        self.shape.get(1).copied().unwrap_or(1)
    }
}

/// Everything serving needs, decoded.
#[derive(Debug, Clone)]
pub struct ModelArtifact {
    pub spec: ModelSpec,
    pub weights: BTreeMap<String, Tensor32>,
    pub user_ids: IdMap,
    pub item_ids: IdMap,
    /// CSR over users: `seen_items[seen_ptr[u]..seen_ptr[u+1]]`, sorted.
    pub seen_ptr: Vec<u64>,
    pub seen_items: Vec<u32>,
    pub popularity: Vec<u64>,
}

fn le_bytes<T: Copy, const N: usize>(values: &[T], to: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * N);
    for &v in values {
        out.extend_from_slice(&to(v));
    }
    out
}

struct Owned {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

fn id_tensors(prefix: &str, ids: &IdMap, out: &mut Vec<(String, Owned)>) {
    match ids {
        IdMap::Int { ids, .. } => out.push((
            format!("ids.{prefix}"),
            Owned { dtype: Dtype::I64, shape: vec![ids.len()], bytes: le_bytes(ids, i64::to_le_bytes) },
        )),
        IdMap::Text { ids, .. } => {
            let mut utf8 = Vec::new();
            let mut offsets = Vec::with_capacity(ids.len() + 1);
            offsets.push(0i64);
            for id in ids {
                utf8.extend_from_slice(id.as_bytes());
                offsets.push(utf8.len() as i64);
            }
            out.push((
                format!("ids.{prefix}.offsets"),
                Owned { dtype: Dtype::I64, shape: vec![offsets.len()], bytes: le_bytes(&offsets, i64::to_le_bytes) },
            ));
            out.push((format!("ids.{prefix}.utf8"), Owned { dtype: Dtype::U8, shape: vec![utf8.len()], bytes: utf8 }));
        }
    }
}

/// Weights alone as a safetensors blob (how the trainer library hands them back).
pub fn encode_weights(weights: &BTreeMap<String, Tensor32>) -> Result<Vec<u8>> {
    let owned: Vec<(String, Vec<usize>, Vec<u8>)> =
        weights.iter().map(|(n, t)| (n.clone(), t.shape.clone(), le_bytes(&t.data, f32::to_le_bytes))).collect();
    let views: Vec<(String, TensorView<'_>)> = owned
        .iter()
        .map(|(n, shape, bytes)| Ok((n.clone(), TensorView::new(Dtype::F32, shape.clone(), bytes)?)))
        .collect::<Result<_, safetensors::SafeTensorError>>()?;
    Ok(safetensors::serialize(views, &None)?)
}

pub fn decode_weights(blob: &[u8]) -> Result<BTreeMap<String, Tensor32>> {
    let st = SafeTensors::deserialize(blob)?;
    let mut weights = BTreeMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            bail!("weight {name} is not f32");
        }
        let data = view.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        weights.insert(name, Tensor32 { shape: view.shape().to_vec(), data });
    }
    Ok(weights)
}

impl ModelArtifact {
    /// A model over `data`'s id maps, with its seen lists and popularity.
    pub fn new(spec: ModelSpec, weights: BTreeMap<String, Tensor32>, data: &crate::dataset::Interactions) -> Self {
        Self {
            spec,
            weights,
            user_ids: data.user_ids.clone(),
            item_ids: data.item_ids.clone(),
            seen_ptr: data.user_ptr.clone(),
            seen_items: data.items.clone(),
            popularity: data.popularity.clone(),
        }
    }

    pub fn encode(&self, extra_metadata: &BTreeMap<String, String>) -> Result<Vec<u8>> {
        let mut tensors: Vec<(String, Owned)> = Vec::new();
        for (name, t) in &self.weights {
            tensors.push((
                name.clone(),
                Owned { dtype: Dtype::F32, shape: t.shape.clone(), bytes: le_bytes(&t.data, f32::to_le_bytes) },
            ));
        }
        id_tensors("user", &self.user_ids, &mut tensors);
        id_tensors("item", &self.item_ids, &mut tensors);
        let seen_ptr: Vec<i64> = self.seen_ptr.iter().map(|&v| v as i64).collect();
        let seen_items: Vec<i32> = self.seen_items.iter().map(|&v| v as i32).collect();
        let popularity: Vec<i64> = self.popularity.iter().map(|&v| v as i64).collect();
        tensors.push((
            "seen.indptr".into(),
            Owned { dtype: Dtype::I64, shape: vec![seen_ptr.len()], bytes: le_bytes(&seen_ptr, i64::to_le_bytes) },
        ));
        tensors.push((
            "seen.indices".into(),
            Owned { dtype: Dtype::I32, shape: vec![seen_items.len()], bytes: le_bytes(&seen_items, i32::to_le_bytes) },
        ));
        tensors.push((
            "items.popularity".into(),
            Owned { dtype: Dtype::I64, shape: vec![popularity.len()], bytes: le_bytes(&popularity, i64::to_le_bytes) },
        ));

        let mut meta: HashMap<String, String> = extra_metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        meta.insert("format".into(), FORMAT.into());
        meta.insert("spec".into(), serde_json::to_string(&self.spec)?);
        meta.insert("user_id_type".into(), self.user_ids.kind().as_str().into());
        meta.insert("item_id_type".into(), self.item_ids.kind().as_str().into());
        meta.insert("crc32".into(), String::from_utf8_lossy(CHECKSUM_PLACEHOLDER).into());

        let views: Vec<(String, TensorView<'_>)> = tensors
            .iter()
            .map(|(name, o)| Ok((name.clone(), TensorView::new(o.dtype, o.shape.clone(), &o.bytes)?)))
            .collect::<Result<_, safetensors::SafeTensorError>>()?;
        let mut blob = safetensors::serialize(views, &Some(meta))?;
        seal_checksum(&mut blob)?;
        Ok(blob)
    }

    pub fn decode(blob: &[u8]) -> Result<Self> {
        let (_, header) = SafeTensors::read_metadata(blob).context("stored model is not a safetensors blob")?;
        verify_checksum(blob)?;
        let meta = header.metadata().clone().unwrap_or_default();
        match meta.get("format").map(String::as_str) {
            Some(FORMAT) => {}
            other => bail!("stored model has format {other:?}, this build reads {FORMAT:?}"),
        }
        let spec: ModelSpec = serde_json::from_str(meta.get("spec").ok_or_else(|| anyhow!("no spec in blob"))?)?;
        let st = SafeTensors::deserialize(blob)?;
        let mut weights = BTreeMap::new();
        for (name, view) in st.tensors() {
            if view.dtype() == Dtype::F32 {
                let data = view.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
                weights.insert(name, Tensor32 { shape: view.shape().to_vec(), data });
            }
        }
        let i64s = |name: &str| -> Result<Vec<i64>> {
            let v = st.tensor(name).with_context(|| format!("blob lacks {name}"))?;
            Ok(v.data().chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect())
        };
        let ids = |prefix: &str| -> Result<IdMap> {
            let kind_key = format!("{prefix}_id_type");
            match meta.get(&kind_key).and_then(|k| IdKind::parse(k)) {
                Some(IdKind::BigInt) => Ok(IdMap::from_ints(i64s(&format!("ids.{prefix}"))?)),
                Some(IdKind::Text) => {
                    let offsets = i64s(&format!("ids.{prefix}.offsets"))?;
                    let utf8 = st.tensor(&format!("ids.{prefix}.utf8"))?;
                    let bytes = utf8.data();
                    let ids = offsets
                        .windows(2)
                        .map(|w| {
                            // Offsets from a damaged blob must not slice out of bounds.
                            let (start, end) = (w[0] as usize, w[1] as usize);
                            let text = bytes.get(start..end).ok_or_else(|| {
                                anyhow!(
                                    "stored {prefix} id offsets {start}..{end} are outside its {} bytes",
                                    bytes.len()
                                )
                            })?;
                            std::str::from_utf8(text)
                                .map(Into::into)
                                .map_err(|e| anyhow!("bad utf-8 in stored {prefix} id: {e}"))
                        })
                        .collect::<Result<Vec<Box<str>>>>()?;
                    Ok(IdMap::from_texts(ids))
                }
                None => bail!("blob lacks {kind_key}"),
            }
        };
        let seen_items = {
            let v = st.tensor("seen.indices")?;
            v.data().chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap()) as u32).collect()
        };
        Ok(Self {
            spec,
            weights,
            user_ids: ids("user")?,
            item_ids: ids("item")?,
            seen_ptr: i64s("seen.indptr")?.into_iter().map(|v| v as u64).collect(),
            seen_items,
            popularity: i64s("items.popularity")?.into_iter().map(|v| v as u64).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Architecture;

    /// Two users, two items, one weight tensor.
    fn small_artifact(item_ids: IdMap) -> ModelArtifact {
        let mut weights = BTreeMap::new();
        weights.insert("output.weight".into(), Tensor32 { shape: vec![1, 3], data: vec![0.5, -1.0, 2.25] });
        ModelArtifact {
            spec: ModelSpec { architecture: Architecture::Gmf, factors: 3, layers: vec![] },
            weights,
            user_ids: IdMap::from_ints(vec![42, 7]),
            item_ids,
            seen_ptr: vec![0, 1, 2],
            seen_items: vec![1, 0],
            popularity: vec![1, 1],
        }
    }

    #[test]
    fn roundtrip_bigint_and_text() {
        let art = small_artifact(IdMap::from_texts(vec!["ä-uuid".into(), "b".into()]));
        let blob = art.encode(&BTreeMap::from([("trained_by".to_string(), "x".to_string())])).unwrap();
        let back = ModelArtifact::decode(&blob).unwrap();
        assert_eq!(back.spec, art.spec);
        assert_eq!(back.weights, art.weights);
        assert_eq!(back.user_ids, art.user_ids);
        assert_eq!(back.item_ids, art.item_ids);
        assert_eq!(back.seen_ptr, art.seen_ptr);
        assert_eq!(back.seen_items, art.seen_items);
        assert_eq!(back.popularity, art.popularity);
        assert!(ModelArtifact::decode(b"garbage").is_err());
        // Text id offsets pointing outside their bytes: an error, not a panic.
        let mut bad = art.clone();
        bad.item_ids = IdMap::from_texts(vec!["abc".into()]);
        let mut blob = bad.encode(&BTreeMap::new()).unwrap();
        let (n, header) = SafeTensors::read_metadata(&blob).unwrap();
        let end = 8 + n + header.tensors()["ids.item.offsets"].data_offsets.1;
        blob[end - 8..end].copy_from_slice(&1000i64.to_le_bytes());
        seal_checksum(&mut blob).unwrap(); // past the checksum, to the offsets check
        let err = ModelArtifact::decode(&blob).unwrap_err().to_string();
        assert!(err.contains("outside"), "{err}");
        assert_eq!(decode_weights(&encode_weights(&art.weights).unwrap()).unwrap(), art.weights);
    }

    /// Any changed byte, in the data or in the header, fails the checksum; a blob without the
    /// field (written before checksums) still decodes.
    #[test]
    fn checksum_covers_header_and_data() {
        let art = small_artifact(IdMap::from_ints(vec![1, 2]));
        let blob = art.encode(&BTreeMap::new()).unwrap();
        assert!(ModelArtifact::decode(&blob).is_ok());
        let at = checksum_position(&blob).unwrap();
        assert_ne!(&blob[at..at + 8], CHECKSUM_PLACEHOLDER);
        // The data section's last byte, and a digit of the spec's "factors" in the header.
        let mut data_flip = blob.clone();
        *data_flip.last_mut().unwrap() ^= 0x01;
        let err = ModelArtifact::decode(&data_flip).unwrap_err().to_string();
        assert!(err.contains("fails its checksum"), "{err}");
        let mut header_flip = blob.clone();
        let factors = blob.windows(11).position(|w| w == b"factors\\\":3").expect("spec in header");
        header_flip[factors + 10] = b'4';
        let err = ModelArtifact::decode(&header_flip).unwrap_err().to_string();
        assert!(err.contains("fails its checksum"), "{err}");
        // Sealing again (as a writer would) makes a damaged blob pass the checksum only.
        seal_checksum(&mut data_flip).unwrap();
        assert!(verify_checksum(&data_flip).is_ok());
        // A blob from before checksums: same content, no field.
        let legacy = {
            let st = SafeTensors::deserialize(&blob).unwrap();
            let (_, header) = SafeTensors::read_metadata(&blob).unwrap();
            let mut meta = header.metadata().clone().unwrap();
            meta.remove("crc32");
            let views: Vec<(String, TensorView<'_>)> = st.tensors();
            safetensors::serialize(views, &Some(meta)).unwrap()
        };
        assert!(checksum_position(&legacy).is_none());
        assert_eq!(ModelArtifact::decode(&legacy).unwrap().weights, art.weights);
    }
}

//! The serving image: a [`ScoringModel`] laid out as one file in the kernel's own layout, so a
//! backend maps it read-only and scores in place, with no per-item work at attach.
//!
//! Layout (little-endian, sections 64-byte aligned):
//! ```text
//! 0   magic "NEUMFIMG"      8   layout version u32   12  metadata length u32
//! 16  total length u64      24  metadata CRC-32 u32  28  data CRC-32 u32
//! 32  verified_at i64: the server start (PgStartTime) under which the data CRC was last
//!     checked; the only field ever rewritten in place
//! 64  metadata (JSON: identity, spec, id kinds, sections), then the data sections
//! ```
//! Attaching checks the prefix, the metadata CRC, the identity and every section's bounds; the
//! data CRC (the whole file) is checked when the image is built and on first use after each
//! server start (`crate::image_store`), not on every attach.

use crate::ids::IdIndex;
use crate::infer::{Dense, GmfSide, MlpSide, ScoringModel};
use crate::slab::{Plain, Slab};
use crate::spec::ModelSpec;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::io::{self, Seek, SeekFrom, Write};

pub const MAGIC: &[u8; 8] = b"NEUMFIMG";
/// Bumped whenever the layout changes; part of the file name, so builds of different layouts
/// never read each other's images.
pub const LAYOUT_VERSION: u32 = 1;
pub const PREFIX_BYTES: usize = 64;
/// Byte offset of `verified_at` in the prefix.
pub const VERIFIED_AT_OFFSET: u64 = 32;
const ALIGN: usize = 64;

/// Which stored version an image was built from. `stamp` tells apart two versions that reuse a
/// (model, version) pair after the model was dropped and trained again (its trained_at, µs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageIdentity {
    pub database: u32,
    pub model: String,
    pub version: i32,
    pub stamp: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    pub layout: u32,
    pub meta_len: usize,
    pub total_len: u64,
    pub meta_crc: u32,
    pub data_crc: u32,
    pub verified_at: i64,
}

#[derive(Serialize, Deserialize)]
struct IdMeta {
    text: bool,
    dense_first: i64,
}

#[derive(Serialize, Deserialize)]
struct Section {
    name: String,
    /// From the start of the data region, in bytes.
    offset: usize,
    count: usize,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    identity: ImageIdentity,
    spec: ModelSpec,
    output_bias_bits: u32,
    users: IdMeta,
    items: IdMeta,
    sections: Vec<Section>,
}

fn bytes_of<T: Plain>(s: &[T]) -> &[u8] {
    // SAFETY: Plain types have no padding and any byte view of them is valid.
    unsafe { std::slice::from_raw_parts(s.as_ptr() as *const u8, std::mem::size_of_val(s)) }
}

/// Every array of the model, by section name, as bytes.
fn sections(m: &ScoringModel) -> Vec<(String, &[u8], usize)> {
    let mut out: Vec<(String, &[u8], usize)> = Vec::new();
    fn put<'a, T: Plain>(out: &mut Vec<(String, &'a [u8], usize)>, name: &str, s: &'a [T]) {
        out.push((name.to_string(), bytes_of(s), s.len()));
    }
    for (side, ids) in [("users", &m.users), ("items", &m.items)] {
        put(&mut out, &format!("{side}.ints"), &ids.ints);
        put(&mut out, &format!("{side}.offsets"), &ids.offsets);
        put(&mut out, &format!("{side}.bytes"), &ids.bytes);
        put(&mut out, &format!("{side}.slots"), &ids.slots);
        put(&mut out, &format!("{side}.dense"), &ids.dense);
    }
    put(&mut out, "seen_ptr", &m.seen_ptr);
    put(&mut out, "seen_items", &m.seen_items);
    put(&mut out, "popularity", &m.popularity);
    put(&mut out, "by_popularity", &m.by_popularity);
    if let Some(g) = &m.gmf {
        put(&mut out, "gmf.user", &g.user);
        put(&mut out, "gmf.item_folded", &g.item_folded);
        put(&mut out, "gmf.first_stage_blocks", &g.first_stage_blocks);
    }
    if let Some(mlp) = &m.mlp {
        put(&mut out, "mlp.user_embedding", &mlp.user_embedding);
        put(&mut out, "mlp.first_user_weight", &mlp.first_user_weight);
        put(&mut out, "mlp.item_pre", &mlp.item_pre);
        put(&mut out, "mlp.output", &mlp.output);
        for (k, layer) in mlp.upper.iter().enumerate() {
            put(&mut out, &format!("mlp.upper.{k}.weight"), &layer.weight);
            put(&mut out, &format!("mlp.upper.{k}.bias"), &layer.bias);
        }
    }
    out
}

/// Bytes between calls of a long loop's `tick` (which may check for a cancel and raise).
const TICK_BYTES: usize = 64 << 20;

/// Writes `model` as an image to `out` (positioned at its start); returns the length written.
/// `verified_at` is stored as is: the writer computed the data CRC itself. `tick` is called
/// every 64 MB written.
pub fn write_image<W: Write + Seek>(
    model: &ScoringModel,
    identity: &ImageIdentity,
    verified_at: i64,
    out: &mut W,
    tick: &mut dyn FnMut(),
) -> io::Result<u64> {
    let parts = sections(model);
    let mut offset = 0usize;
    let mut table = Vec::with_capacity(parts.len());
    for (name, bytes, count) in &parts {
        table.push(Section { name: name.clone(), offset, count: *count });
        offset = (offset + bytes.len()).next_multiple_of(ALIGN);
    }
    let data_len = offset;
    let id_meta = |ids: &IdIndex| IdMeta { text: ids.text, dense_first: ids.dense_first };
    let meta = Meta {
        identity: identity.clone(),
        spec: model.spec.clone(),
        output_bias_bits: model.output_bias.to_bits(),
        users: id_meta(&model.users),
        items: id_meta(&model.items),
        sections: table,
    };
    let meta = serde_json::to_vec(&meta).map_err(io::Error::other)?;
    let data_start = (PREFIX_BYTES + meta.len()).next_multiple_of(ALIGN);
    let total = (data_start + data_len) as u64;
    let mut prefix = [0u8; PREFIX_BYTES];
    prefix[..8].copy_from_slice(MAGIC);
    prefix[8..12].copy_from_slice(&LAYOUT_VERSION.to_le_bytes());
    prefix[12..16].copy_from_slice(&(meta.len() as u32).to_le_bytes());
    prefix[16..24].copy_from_slice(&total.to_le_bytes());
    prefix[24..28].copy_from_slice(&crc32fast::hash(&meta).to_le_bytes());
    prefix[32..40].copy_from_slice(&verified_at.to_le_bytes());
    out.write_all(&prefix)?;
    out.write_all(&meta)?;
    out.write_all(&vec![0u8; data_start - PREFIX_BYTES - meta.len()])?;
    let mut crc = crc32fast::Hasher::new();
    let zeros = [0u8; ALIGN];
    for (_, bytes, _) in &parts {
        for piece in bytes.chunks(TICK_BYTES) {
            out.write_all(piece)?;
            crc.update(piece);
            tick();
        }
        let pad = bytes.len().next_multiple_of(ALIGN) - bytes.len();
        out.write_all(&zeros[..pad])?;
        crc.update(&zeros[..pad]);
    }
    out.seek(SeekFrom::Start(28))?;
    out.write_all(&crc.finalize().to_le_bytes())?;
    out.seek(SeekFrom::Start(total))?;
    Ok(total)
}

pub fn read_prefix(bytes: &[u8]) -> Result<Prefix> {
    if bytes.len() < PREFIX_BYTES || &bytes[..8] != MAGIC {
        bail!("not a neumf serving image");
    }
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
    Ok(Prefix {
        layout: u32_at(8),
        meta_len: u32_at(12) as usize,
        total_len: u64_at(16),
        meta_crc: u32_at(24),
        data_crc: u32_at(28),
        verified_at: u64_at(32) as i64,
    })
}

/// The image's prefix and identity, checking the prefix, length and metadata CRC.
pub fn read_header(bytes: &[u8]) -> Result<(Prefix, ImageIdentity)> {
    let (prefix, meta) = read_meta(bytes)?;
    Ok((prefix, meta.identity))
}

fn read_meta(bytes: &[u8]) -> Result<(Prefix, Meta)> {
    let prefix = read_prefix(bytes)?;
    if prefix.layout != LAYOUT_VERSION {
        bail!("image has layout {}, this build reads layout {LAYOUT_VERSION}", prefix.layout);
    }
    if prefix.total_len != bytes.len() as u64 {
        bail!("image is {} bytes, its header says {} (truncated or extended)", bytes.len(), prefix.total_len);
    }
    let meta = bytes.get(PREFIX_BYTES..PREFIX_BYTES + prefix.meta_len).context("image metadata is cut short")?;
    if crc32fast::hash(meta) != prefix.meta_crc {
        bail!("image metadata fails its checksum");
    }
    Ok((prefix, serde_json::from_slice(meta).context("image metadata does not parse")?))
}

/// Whether the data region matches the CRC in the prefix (reads the whole image, calling
/// `tick` every 64 MB).
pub fn data_intact(bytes: &[u8], tick: &mut dyn FnMut()) -> Result<bool> {
    let prefix = read_prefix(bytes)?;
    let start = (PREFIX_BYTES + prefix.meta_len).next_multiple_of(ALIGN);
    let data = bytes.get(start..).context("image is cut short")?;
    let mut crc = crc32fast::Hasher::new();
    for piece in data.chunks(TICK_BYTES) {
        crc.update(piece);
        tick();
    }
    Ok(crc.finalize() == prefix.data_crc)
}

impl ScoringModel {
    /// The model in an image, its arrays borrowed from `image` (no copy, no per-item work).
    pub fn from_image(image: &Slab<u8>) -> Result<(ScoringModel, ImageIdentity)> {
        let (prefix, meta) = read_meta(image)?;
        let data_start = (PREFIX_BYTES + prefix.meta_len).next_multiple_of(ALIGN);
        let find = |name: &str| -> Result<&Section> {
            meta.sections.iter().find(|s| s.name == name).with_context(|| format!("image lacks section {name}"))
        };
        fn get<T: Plain>(image: &Slab<u8>, start: usize, s: &Section, want: Option<usize>) -> Result<Slab<T>> {
            if let Some(want) = want {
                if s.count != want {
                    bail!("image section {} has {} elements, expected {want}", s.name, s.count);
                }
            }
            image.view(start + s.offset, s.count)
        }
        let section =
            |name: &str, want: Option<usize>| -> Result<Slab<f32>> { get(image, data_start, find(name)?, want) };
        let ids = |side: &str, m: &IdMeta| -> Result<IdIndex> {
            let ix = IdIndex {
                text: m.text,
                dense_first: m.dense_first,
                ints: get(image, data_start, find(&format!("{side}.ints"))?, None)?,
                offsets: get(image, data_start, find(&format!("{side}.offsets"))?, None)?,
                bytes: get(image, data_start, find(&format!("{side}.bytes"))?, None)?,
                slots: get(image, data_start, find(&format!("{side}.slots"))?, None)?,
                dense: get(image, data_start, find(&format!("{side}.dense"))?, None)?,
            };
            let consistent = if ix.text {
                !ix.offsets.is_empty() && *ix.offsets.last().unwrap() == ix.bytes.len() as u64 && ix.offsets[0] == 0
            } else {
                ix.offsets.is_empty()
            };
            let lookup = ix.slots.len().is_power_of_two() || (!ix.text && ix.slots.is_empty() && !ix.dense.is_empty());
            if !consistent || !lookup {
                bail!("image's {side} id index is inconsistent");
            }
            Ok(ix)
        };
        let (users, items) = (ids("users", &meta.users)?, ids("items", &meta.items)?);
        let (nu, ni) = (users.len(), items.len());
        let spec = meta.spec;
        spec.validate().map_err(anyhow::Error::msg)?;
        let seen_ptr: Slab<u64> = get(image, data_start, find("seen_ptr")?, Some(nu + 1))?;
        let seen_items: Slab<u32> = get(image, data_start, find("seen_items")?, None)?;
        if seen_ptr[0] != 0 || seen_ptr[nu] != seen_items.len() as u64 {
            bail!("image's seen-list offsets are inconsistent");
        }
        let gmf = if spec.architecture.has_gmf() {
            let f = spec.factors;
            Some(GmfSide {
                factors: f,
                user: section("gmf.user", Some(nu * f))?,
                item_folded: section("gmf.item_folded", Some(ni * f))?,
                first_stage_blocks: section(
                    "gmf.first_stage_blocks",
                    Some(ni.div_ceil(crate::infer::BLOCK) * (f + 1) * crate::infer::BLOCK),
                )?,
            })
        } else {
            None
        };
        let mlp = if spec.architecture.has_mlp() {
            let (d, h1) = (spec.mlp_embedding_dim(), spec.layers[1]);
            let upper = spec
                .layers
                .windows(2)
                .skip(1)
                .enumerate()
                .map(|(k, win)| {
                    Ok(Dense {
                        weight: section(&format!("mlp.upper.{k}.weight"), Some(win[1] * win[0]))?,
                        bias: section(&format!("mlp.upper.{k}.bias"), Some(win[1]))?,
                        inputs: win[0],
                        outputs: win[1],
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Some(MlpSide {
                embed: d,
                hidden: h1,
                user_embedding: section("mlp.user_embedding", Some(nu * d))?,
                first_user_weight: section("mlp.first_user_weight", Some(h1 * d))?,
                item_pre: section("mlp.item_pre", Some(ni * h1))?,
                output: section("mlp.output", Some(*spec.layers.last().unwrap()))?,
                upper,
            })
        } else {
            None
        };
        let model = ScoringModel {
            spec,
            seen_ptr,
            seen_items,
            popularity: get(image, data_start, find("popularity")?, Some(ni))?,
            by_popularity: get(image, data_start, find("by_popularity")?, Some(ni))?,
            users,
            items,
            gmf,
            mlp,
            output_bias: f32::from_bits(meta.output_bias_bits),
        };
        Ok((model, meta.identity))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ids::IdRef;
    use std::io::Cursor;
    use std::sync::Arc;

    /// `bytes` copied into 64-byte-aligned memory, as a mapping would be.
    pub(crate) fn aligned(bytes: &[u8]) -> Slab<u8> {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        // SAFETY: the u64 buffer has at least bytes.len() bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), words.as_mut_ptr() as *mut u8, bytes.len()) };
        let owner: Slab<u64> = words.into();
        // SAFETY: the pointer and length lie inside `owner`, which the slab keeps alive.
        unsafe { Slab::<u8>::from_raw(owner.as_ptr() as *const u8, bytes.len(), Arc::new(owner)) }
    }

    pub(crate) fn identity() -> ImageIdentity {
        ImageIdentity { database: 5, model: "movies".into(), version: 3, stamp: 1234 }
    }

    pub(crate) fn image_of(model: &ScoringModel) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        let n = write_image(model, &identity(), 77, &mut out, &mut || {}).unwrap();
        assert_eq!(n as usize, out.get_ref().len());
        out.into_inner()
    }

    #[test]
    fn an_image_scores_exactly_as_the_model_it_was_built_from() {
        for model in [crate::infer::tests::random_model(), crate::infer::tests::random_text_model()] {
            let bytes = image_of(&model);
            let image = aligned(&bytes);
            let (mapped, id) = ScoringModel::from_image(&image).unwrap();
            assert_eq!(id, identity());
            assert!(data_intact(&image, &mut || {}).unwrap());
            assert_eq!(read_prefix(&image).unwrap().verified_at, 77);
            for u in 0..model.n_users() as u32 {
                let all: Vec<u32> = (0..model.n_items() as u32).collect();
                let (mut a, mut b) = (Vec::new(), Vec::new());
                model.user_context(u).logits(&all, &mut a);
                mapped.user_context(u).logits(&all, &mut b);
                assert_eq!(a, b);
                assert_eq!(model.seen(u), mapped.seen(u));
                assert_eq!(model.recommend(u, 3, true, None), mapped.recommend(u, 3, true, None));
            }
            for i in 0..model.n_items() as u32 {
                let t = model.items.text_at(i);
                assert_eq!(mapped.item_index(IdRef::Text(&t)), Some(i));
            }
            assert_eq!(model.most_popular(4), mapped.most_popular(4));
        }
    }

    #[test]
    fn damaged_images_are_refused_or_fail_the_data_checksum() {
        let bytes = image_of(&crate::infer::tests::random_model());
        let truncated = aligned(&bytes[..bytes.len() - 64]);
        assert!(ScoringModel::from_image(&truncated).unwrap_err().to_string().contains("truncated"));
        let mut meta_flip = bytes.clone();
        meta_flip[PREFIX_BYTES + 3] ^= 1;
        assert!(ScoringModel::from_image(&aligned(&meta_flip)).unwrap_err().to_string().contains("checksum"));
        let mut data_flip = bytes.clone();
        let last = data_flip.len() - 70;
        data_flip[last] ^= 0x40;
        assert!(!data_intact(&aligned(&data_flip), &mut || {}).unwrap());
        let mut other_layout = bytes.clone();
        other_layout[8] = 99;
        assert!(ScoringModel::from_image(&aligned(&other_layout)).is_err());
        assert!(ScoringModel::from_image(&aligned(b"hello")).is_err());
    }
}

//! Serving images on disk: one file per (database, model, version), built once per server by
//! the first backend that needs it and mapped read-only by every backend.
//!
//! - **Publishing** is atomic: an image is written to `<name>.tmp<pid>` and renamed into place,
//!   so a builder killed midway leaves only a temporary file nobody reads (swept later).
//! - **Building once**: builders of one model take an `flock` on `<model>.lock`; the others
//!   wait, then attach to what the first published. Correctness does not rest on the lock: two
//!   builders would each publish a complete image, and the last rename wins.
//! - **Checksums**: the data CRC is computed while building, and checked again on first use
//!   after each server start (an image survives restarts; the disk under it may not have), then
//!   recorded in the image's `verified_at`. Attaching in between checks only the header.
//! - **Reclaiming**: images of superseded or dropped versions are unlinked ([`ImageStore::remove`]);
//!   a backend that still maps one keeps its pages until it lets go.

use crate::image::{self, ImageIdentity, LAYOUT_VERSION, VERIFIED_AT_OFFSET};
use crate::infer::ScoringModel;
use crate::slab::Slab;
use anyhow::{anyhow, Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What attaching took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attach {
    /// Mapped an image already verified under this server start.
    Mapped,
    /// Mapped an image from before this server start after checking its data CRC.
    Verified,
    /// Built the image (none was there).
    Built,
    /// Built it again because the one there was damaged; says how.
    Rebuilt(String),
}

pub struct Attached {
    pub model: ScoringModel,
    pub path: PathBuf,
    pub bytes: usize,
    pub how: Attach,
}

/// One image file, as listed by [`ImageStore::list`].
#[derive(Debug, Clone)]
pub struct ImageFile {
    pub identity: Option<ImageIdentity>,
    pub path: PathBuf,
    pub bytes: u64,
    /// Verified under the given server start (false also for a damaged header).
    pub verified: bool,
    pub modified: std::time::SystemTime,
}

/// A read-only shared mapping of a whole file.
struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and lives until dropped.
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len came from a successful mmap and are unmapped once.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

fn map_file(file: &File) -> io::Result<Slab<u8>> {
    let len = file.metadata()?.len() as usize;
    if len == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "image file is empty"));
    }
    // SAFETY: a fresh read-only shared mapping of an open file; checked for failure below.
    let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_SHARED, file.as_raw_fd(), 0) };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let mapping = Arc::new(Mapping { ptr, len });
    // SAFETY: the mapping stays valid while the Arc lives, and images are never written in
    // place except for the 8-byte verified_at field, which the kernel never reads.
    Ok(unsafe { Slab::<u8>::from_raw(ptr as *const u8, len, mapping) })
}

/// An exclusive lock on a file, released when dropped (or when the process dies).
struct FileLock(#[allow(dead_code)] File);

impl FileLock {
    /// Waits for the lock, calling `wait` between tries 2 ms apart (it may raise to cancel the
    /// wait; the lock file is closed, and so released, as it unwinds).
    fn acquire(path: &Path, wait: &mut dyn FnMut()) -> io::Result<FileLock> {
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
        loop {
            // SAFETY: flock on an open descriptor.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(FileLock(file));
            }
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) && err.raw_os_error() != Some(libc::EINTR) {
                return Err(err);
            }
            wait();
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
}

/// Removes a temporary file unless it was published.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}

pub struct ImageStore {
    dir: PathBuf,
}

/// FNV-1a over `bytes` from `basis`: stable across builds and Rust versions (file names must
/// not change under an upgrade).
fn fnv1a(bytes: &[u8], basis: u64) -> u64 {
    bytes.iter().fold(basis, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Longest image path relative to the data directory, temporary suffix included, that a tar
/// stream (as `pg_basebackup` and other backup tools write) carries: names under 100 bytes.
/// The extension keeps images where `pg_basebackup` skips them; short names keep other tools
/// from tripping over them too.
pub const MAX_RELATIVE_PATH: usize = 99;

fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0 && (unsafe { libc::kill(pid, 0) } == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

impl ImageStore {
    /// The images of one database live in `dir` (created on first build).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ImageStore { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// File-name key of a model: 96 bits of two FNV-1a hashes of its name, in hex. Any name
    /// becomes a short, safe file name (see [`MAX_RELATIVE_PATH`]); two names sharing a key
    /// (odds 2⁻⁹⁶) would only rebuild each other's images, as the header names the model.
    pub(crate) fn key(model: &str) -> String {
        let (a, b) = (fnv1a(model.as_bytes(), 0xcbf2_9ce4_8422_2325), fnv1a(model.as_bytes(), 0x6c62_272e_07bb_0142));
        format!("{:012x}{:012x}", a >> 16, b >> 16)
    }

    /// `<key>.v<version>.<stamp in hex>.L<layout>.img`: at most 66 bytes, 77 with a temporary
    /// file's `.tmp<pid>`.
    pub fn path_of(&self, id: &ImageIdentity) -> PathBuf {
        let name = format!("{}.v{}.{:x}.L{LAYOUT_VERSION}.img", Self::key(&id.model), id.version, id.stamp as u64);
        self.dir.join(name)
    }

    /// Maps the image of `id` if one is there, intact as far as its header says and verified
    /// under `server_start`; None when it must be built or verified first.
    pub fn attach(&self, id: &ImageIdentity, server_start: i64) -> Option<Attached> {
        let path = self.path_of(id);
        let file = File::open(&path).ok()?;
        let bytes = map_file(&file).ok()?;
        let prefix = image::read_prefix(&bytes).ok()?;
        if prefix.verified_at != server_start {
            return None;
        }
        let (model, found) = ScoringModel::from_image(&bytes).ok()?;
        (found == *id).then(|| Attached { model, path, bytes: bytes.len(), how: Attach::Mapped })
    }

    /// Maps the image of `id`, verifying or building it first when needed. `build` decodes
    /// the stored version (called at most once, with the model's build lock held); `wait` is
    /// called while another backend holds that lock, and between 64 MB steps of a checksum or
    /// a write (it may raise to cancel; everything here unwinds cleanly).
    pub fn attach_or_build(
        &self,
        id: &ImageIdentity,
        server_start: i64,
        wait: &mut dyn FnMut(),
        build: &mut dyn FnMut() -> Result<ScoringModel>,
    ) -> Result<Attached> {
        if let Some(attached) = self.attach(id, server_start) {
            return Ok(attached);
        }
        fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        let lock_path = self.dir.join(format!("{}.lock", Self::key(&id.model)));
        let _lock = FileLock::acquire(&lock_path, wait).with_context(|| format!("locking {}", lock_path.display()))?;
        // Someone may have built or verified it while we waited.
        if let Some(attached) = self.attach(id, server_start) {
            return Ok(attached);
        }
        let path = self.path_of(id);
        let mut rebuilt = None;
        if let Ok(file) = OpenOptions::new().read(true).write(true).open(&path) {
            match self.check(&file, id, wait) {
                Ok((model, bytes)) => {
                    file.write_all_at(&server_start.to_le_bytes(), VERIFIED_AT_OFFSET)?;
                    return Ok(Attached { model, path, bytes, how: Attach::Verified });
                }
                Err(damage) => {
                    rebuilt = Some(damage.to_string());
                    fs::remove_file(&path)?;
                }
            }
        }
        self.sweep_temporary_files();
        let temp_path = PathBuf::from(format!("{}.tmp{}", path.display(), std::process::id()));
        let mut temp = TempFile(Some(temp_path.clone()));
        let file = OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&temp_path)?;
        let model = build()?;
        let mut out = BufWriter::with_capacity(1 << 20, &file);
        image::write_image(&model, id, server_start, &mut out, wait)?;
        out.into_inner().map_err(|e| anyhow!("writing {}: {}", temp_path.display(), e.error()))?;
        drop(model);
        fs::rename(&temp_path, &path)?;
        temp.0 = None;
        let bytes = map_file(&file)?;
        let (model, _) = ScoringModel::from_image(&bytes)?;
        let how = match rebuilt {
            Some(why) => Attach::Rebuilt(why),
            None => Attach::Built,
        };
        Ok(Attached { model, path, bytes: bytes.len(), how })
    }

    /// The model in `file` if the image is whole and usable: header, identity, data CRC and
    /// every section (anything less is damage, and the image is rebuilt).
    fn check(&self, file: &File, id: &ImageIdentity, tick: &mut dyn FnMut()) -> Result<(ScoringModel, usize)> {
        let bytes = map_file(file)?;
        let (_, found) = image::read_header(&bytes)?;
        if found != *id {
            return Err(anyhow!("it names {found:?}"));
        }
        if !image::data_intact(&bytes, tick)? {
            return Err(anyhow!("its data fails its checksum"));
        }
        let (model, _) = ScoringModel::from_image(&bytes)?;
        Ok((model, bytes.len()))
    }

    /// Temporary files of builders that died (their pid is gone).
    fn sweep_temporary_files(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((_, pid)) = name.rsplit_once(".tmp") else { continue };
            if let Ok(pid) = pid.parse::<i32>() {
                if !pid_alive(pid) {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }

    /// Unlinks the images of `model` other than `keep`'s version (all of them when `keep` is
    /// None: the model was dropped). Returns how many were removed. The model's lock file
    /// stays (empty): unlinking a lock file others may hold would let two builders in.
    pub fn remove(&self, model: &str, keep: Option<i32>) -> usize {
        self.remove_where(model, |version| Some(version) != keep)
    }

    /// Unlinks the images of `model`'s versions older than `version`.
    pub fn remove_older(&self, model: &str, version: i32) -> usize {
        self.remove_where(model, |v| v < version)
    }

    fn remove_where(&self, model: &str, doomed: impl Fn(i32) -> bool) -> usize {
        let prefix = format!("{}.v", Self::key(model));
        let Ok(entries) = fs::read_dir(&self.dir) else { return 0 };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(&prefix) else { continue };
            let version = rest.split('.').next().and_then(|v| v.parse::<i32>().ok());
            if name.ends_with(".img") && version.is_some_and(&doomed) && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    /// Every image file of this database, with what its header says.
    pub fn list(&self, server_start: i64) -> Vec<ImageFile> {
        let Ok(entries) = fs::read_dir(&self.dir) else { return Vec::new() };
        let mut files: Vec<ImageFile> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".img"))
            .filter_map(|e| {
                let file = File::open(e.path()).ok()?;
                let meta = file.metadata().ok()?;
                let header = map_file(&file).ok().and_then(|b| {
                    let (prefix, identity) = image::read_header(&b).ok()?;
                    Some((prefix.verified_at == server_start, identity))
                });
                Some(ImageFile {
                    verified: header.as_ref().is_some_and(|h| h.0),
                    identity: header.map(|h| h.1),
                    path: e.path(),
                    bytes: meta.len(),
                    modified: meta.modified().ok()?,
                })
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        files
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::IdRef;
    use crate::image::tests::identity;
    use crate::infer::tests::random_model;

    fn store() -> (ImageStore, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("neumf-images-{}-{:?}", std::process::id(), std::thread::current().id()));
        let _ = fs::remove_dir_all(&dir);
        (ImageStore::new(dir.join("db")), dir)
    }

    fn score(m: &ScoringModel) -> f32 {
        m.user_context(m.user_index(IdRef::Int(1)).unwrap()).score(2)
    }

    #[test]
    fn builds_once_attaches_then_verifies_after_a_restart() {
        let (store, dir) = store();
        let id = identity();
        let want = score(&random_model());
        let builds = std::cell::Cell::new(0);
        let mut build = || {
            builds.set(builds.get() + 1);
            Ok(random_model())
        };
        let a = store.attach_or_build(&id, 100, &mut || {}, &mut build).unwrap();
        assert_eq!((a.how.clone(), score(&a.model)), (Attach::Built, want));
        let b = store.attach_or_build(&id, 100, &mut || {}, &mut build).unwrap();
        assert_eq!(b.how, Attach::Mapped);
        // A new server start: checked once, then mapped.
        let c = store.attach_or_build(&id, 200, &mut || {}, &mut build).unwrap();
        assert_eq!(c.how, Attach::Verified);
        assert_eq!(store.attach_or_build(&id, 200, &mut || {}, &mut build).unwrap().how, Attach::Mapped);
        assert_eq!(builds.get(), 1);
        assert_eq!(store.list(200).len(), 1);
        assert!(store.list(200)[0].verified);
        // Another version supersedes it; dropping removes everything.
        let v4 = ImageIdentity { version: 4, ..id.clone() };
        store.attach_or_build(&v4, 200, &mut || {}, &mut build).unwrap();
        assert_eq!(store.remove(&id.model, Some(4)), 1);
        assert!(!store.path_of(&id).exists() && store.path_of(&v4).exists());
        let v5 = ImageIdentity { version: 5, ..id.clone() };
        store.attach_or_build(&v5, 200, &mut || {}, &mut build).unwrap();
        assert_eq!(store.remove_older(&id.model, 5), 1, "only older versions");
        assert!(store.path_of(&v5).exists() && !store.path_of(&v4).exists());
        assert_eq!(store.remove(&id.model, None), 1);
        let left: Vec<String> =
            fs::read_dir(store.dir()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(left, vec![format!("{}.lock", ImageStore::key(&id.model))], "only the lock file stays");
        // Scores from the mappings made before the unlink still work.
        assert_eq!(score(&a.model), want);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn damaged_images_are_rebuilt_never_served() {
        let (store, dir) = store();
        let id = identity();
        let mut build = || Ok(random_model());
        store.attach_or_build(&id, 1, &mut || {}, &mut build).unwrap();
        let path = store.path_of(&id);
        let len = fs::metadata(&path).unwrap().len();
        // A flipped data byte is caught on first use after a restart.
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0xff], len - 100).unwrap();
        let r = store.attach_or_build(&id, 2, &mut || {}, &mut build).unwrap();
        assert!(matches!(&r.how, Attach::Rebuilt(why) if why.contains("checksum")), "{:?}", r.how);
        assert_eq!(score(&r.model), score(&random_model()));
        // A truncated image is caught at once, even under the same server start.
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len / 2).unwrap();
        let r = store.attach_or_build(&id, 2, &mut || {}, &mut build).unwrap();
        assert!(matches!(&r.how, Attach::Rebuilt(why) if why.contains("truncated")), "{:?}", r.how);
        // A failed build publishes nothing and leaves no temporary file.
        let other = ImageIdentity { version: 9, ..id.clone() };
        let err = store.attach_or_build(&other, 2, &mut || {}, &mut || Err(anyhow!("blob is corrupt")));
        assert!(err.is_err());
        assert!(!store.path_of(&other).exists());
        assert!(fs::read_dir(store.dir()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains(".tmp")));
        // A dead builder's temporary file is swept by the next build.
        let stale = store.dir().join("abc.v1.s1.L1.img.tmp999999999");
        fs::write(&stale, b"partial").unwrap();
        store.remove(&id.model, None);
        store.attach_or_build(&id, 2, &mut || {}, &mut build).unwrap();
        assert!(!stale.exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn file_names_fit_a_base_backup() {
        let store = ImageStore::new("/data/neumf_images/4294967295");
        let id = ImageIdentity { database: u32::MAX, model: "m".repeat(63), version: i32::MAX, stamp: i64::MIN };
        let name = store.path_of(&id).file_name().unwrap().to_string_lossy().into_owned();
        // Linux pids stay below 2^22 (PID_MAX_LIMIT).
        let temp = format!("{name}.tmp{}", 1u32 << 22);
        assert!(temp.len() <= MAX_RELATIVE_PATH - "pgsql_tmp_neumf/4294967295/".len(), "{} bytes: {temp}", temp.len());
        assert_ne!(ImageStore::key("a"), ImageStore::key("b"));
        assert_eq!(ImageStore::key("movies"), ImageStore::key("movies"));
    }

    #[test]
    fn concurrent_first_calls_build_once() {
        let (store, dir) = store();
        let store = Arc::new(store);
        let builds = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (store, builds) = (store.clone(), builds.clone());
                std::thread::spawn(move || {
                    let mut build = || {
                        builds.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(100));
                        Ok(random_model())
                    };
                    let mut wait = || {};
                    score(&store.attach_or_build(&identity(), 7, &mut wait, &mut build).unwrap().model)
                })
            })
            .collect();
        let scores: Vec<f32> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(scores.iter().all(|&s| s == scores[0]));
        assert_eq!(builds.load(std::sync::atomic::Ordering::SeqCst), 1);
        fs::remove_dir_all(dir).unwrap();
    }
}

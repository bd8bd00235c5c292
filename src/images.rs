//! Serving images of this database (the file logic is `neumf_core::image_store`): where they
//! live, the server start they are verified under, and their removal when a commit supersedes
//! or drops their version.

use neumf_core::image_store::ImageStore;
use parking_lot::Mutex;
use pgrx::pg_sys;
use std::ffi::CStr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// Directory of all serving images, under the data directory. Images are derived data (rebuilt
/// from the model tables at will), so the name starts with `pgsql_tmp`: `pg_basebackup` skips
/// such entries, and a base backup neither carries gigabytes it does not need
/// nor hits its tar limits (names under 100 bytes, members under 8 GB). PostgreSQL itself
/// removes `pgsql_tmp` files only under `base/` and tablespaces, so images survive restarts.
pub const IMAGES_DIR: &str = "pgsql_tmp_neumf";

/// `$PGDATA/pgsql_tmp_neumf/<database oid>`.
pub fn store() -> ImageStore {
    // SAFETY: DataDir is set before any backend runs SQL, and MyDatabaseId once connected.
    let (data_dir, database) = unsafe { (CStr::from_ptr(pg_sys::DataDir), pg_sys::MyDatabaseId) };
    let dir = PathBuf::from(data_dir.to_string_lossy().as_ref()).join(IMAGES_DIR).join(database.to_u32().to_string());
    ImageStore::new(dir)
}

/// The postmaster's start time: an image's data checksum is checked once per server start.
pub fn server_start() -> i64 {
    // SAFETY: set once by the postmaster before it forks backends.
    unsafe { pg_sys::PgStartTime }
}

pub fn database() -> u32 {
    // SAFETY: set when the backend connects to its database.
    unsafe { pg_sys::MyDatabaseId }.to_u32()
}

/// Called while another backend builds the image we need, and between steps of a long
/// checksum or write: cancel and statement_timeout still work (raising releases the build lock
/// and removes a half-written file as the call unwinds).
pub fn check_interrupts() {
    pg_sys::check_for_interrupts!();
}

/// `neumf.test_image_build_delay`: an interruptible pause inside a build, for tests.
pub fn test_build_delay() {
    let until = std::time::Instant::now()
        + std::time::Duration::from_millis(crate::guc::TEST_IMAGE_BUILD_DELAY_MS.get().max(0) as u64);
    while std::time::Instant::now() < until {
        check_interrupts();
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// A removal waiting for commit: the model, the version to keep (None when dropped), and the
/// transaction nesting level that asked for it (a rolled-back subtransaction takes it back).
struct Pending {
    model: String,
    keep: Option<i32>,
    level: i32,
}

static PENDING: Mutex<Vec<Pending>> = Mutex::new(Vec::new());
static CALLBACK_REGISTERED: AtomicBool = AtomicBool::new(false);

/// At commit of the current transaction, unlink the images of `model` other than `keep`'s
/// (all of them when `keep` is None). Files are not transactional, so nothing happens before
/// the commit, nothing if the transaction or the subtransaction that asked aborts, and nothing
/// for a prepared transaction (its images go when the model is next activated or dropped).
pub fn remove_at_commit(model: &str, keep: Option<i32>) {
    if !CALLBACK_REGISTERED.swap(true, Ordering::Relaxed) {
        // SAFETY: registering plain function pointers, once per backend.
        unsafe {
            pg_sys::RegisterXactCallback(Some(on_transaction_end), std::ptr::null_mut());
            pg_sys::RegisterSubXactCallback(Some(on_subtransaction_end), std::ptr::null_mut());
        }
    }
    // SAFETY: plain read of the transaction state.
    let level = unsafe { pg_sys::GetCurrentTransactionNestLevel() };
    PENDING.lock().push(Pending { model: model.to_string(), keep, level });
}

unsafe extern "C-unwind" fn on_subtransaction_end(
    event: pg_sys::SubXactEvent::Type,
    _my: pg_sys::SubTransactionId,
    _parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::SubXactEvent::*;
    // The callback runs while the ending subtransaction is still current.
    let level = pg_sys::GetCurrentTransactionNestLevel();
    let mut pending = PENDING.lock();
    match event {
        SUBXACT_EVENT_ABORT_SUB => pending.retain(|p| p.level < level),
        SUBXACT_EVENT_COMMIT_SUB => pending.iter_mut().filter(|p| p.level >= level).for_each(|p| p.level = level - 1),
        _ => {}
    }
}

unsafe extern "C-unwind" fn on_transaction_end(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    use pg_sys::XactEvent::*;
    let commit = matches!(event, XACT_EVENT_COMMIT | XACT_EVENT_PARALLEL_COMMIT);
    if !(commit || matches!(event, XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT | XACT_EVENT_PREPARE)) {
        return;
    }
    let pending = std::mem::take(&mut *PENDING.lock());
    if commit && !pending.is_empty() {
        // Plain file removal: nothing here can raise, and a panic must not cross into C.
        let _ = std::panic::catch_unwind(|| {
            let store = store();
            for p in &pending {
                store.remove(&p.model, p.keep);
            }
        });
    }
}

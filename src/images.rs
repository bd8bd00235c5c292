//! Serving images of this database (the file logic is `neumf_core::image_store`): where they
//! live, the server start they are verified under, and their removal when a commit supersedes
//! or drops their version.

use neumf_core::image_store::ImageStore;
use parking_lot::Mutex;
use pgrx::pg_sys;
use std::ffi::CStr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// `$PGDATA/neumf_images/<database oid>`.
pub fn store() -> ImageStore {
    // SAFETY: DataDir is set before any backend runs SQL, and MyDatabaseId once connected.
    let (data_dir, database) = unsafe { (CStr::from_ptr(pg_sys::DataDir), pg_sys::MyDatabaseId) };
    let dir =
        PathBuf::from(data_dir.to_string_lossy().as_ref()).join("neumf_images").join(database.to_u32().to_string());
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

/// Called while another backend builds the image we need: cancel and statement_timeout still
/// work (raising releases the build lock as the wait unwinds).
pub fn wait_for_builder() {
    pg_sys::check_for_interrupts!();
    std::thread::sleep(std::time::Duration::from_millis(2));
}

/// `neumf.test_image_build_delay`: an interruptible pause inside a build, for tests.
pub fn test_build_delay() {
    let until = std::time::Instant::now()
        + std::time::Duration::from_millis(crate::guc::TEST_IMAGE_BUILD_DELAY_MS.get().max(0) as u64);
    while std::time::Instant::now() < until {
        wait_for_builder();
    }
}

/// (model, version to keep: None when dropped), removed at commit.
static PENDING: Mutex<Vec<(String, Option<i32>)>> = Mutex::new(Vec::new());
static CALLBACK_REGISTERED: AtomicBool = AtomicBool::new(false);

/// At commit of the current transaction, unlink the images of `model` other than `keep`'s
/// (all of them when `keep` is None). Files are not transactional, so nothing happens before
/// the commit, and nothing at all if the transaction aborts.
pub fn remove_at_commit(model: &str, keep: Option<i32>) {
    if !CALLBACK_REGISTERED.swap(true, Ordering::Relaxed) {
        // SAFETY: registering a plain function pointer, once per backend.
        unsafe { pg_sys::RegisterXactCallback(Some(on_transaction_end), std::ptr::null_mut()) };
    }
    PENDING.lock().push((model.to_string(), keep));
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
            for (model, keep) in &pending {
                store.remove(model, *keep);
            }
        });
    }
}

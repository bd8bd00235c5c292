//! Turning failures into clean PostgreSQL ERRORs: one line naming the problem, plus a hint
//! saying how to fix it where there is one.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

#[track_caller]
pub fn raise(code: PgSqlErrorCode, message: impl Into<String>, hint: Option<&str>) -> ! {
    let mut report = ErrorReport::new(code, message.into(), "neumf");
    if let Some(h) = hint {
        report = report.set_hint(h);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR-level reports do not return")
}

/// Bad argument from the caller.
#[track_caller]
pub fn invalid_argument(message: impl Into<String>) -> ! {
    raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, message, None)
}

/// A named model (or version) that does not exist.
#[track_caller]
pub fn undefined_model(model: &str) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
        format!("neumf model \"{model}\" does not exist"),
        Some("SELECT model, version, active FROM neumf_models lists the trained models; train one with neumf_train()."),
    )
}

/// Anything else from the core, with the cause chain flattened into one line.
#[track_caller]
pub fn internal(context: &str, err: &anyhow::Error) -> ! {
    let mut message = format!("{context}: {err}");
    for cause in err.chain().skip(1) {
        message.push_str(&format!(": {cause}"));
    }
    // libtorch prefixes its own messages and appends C++ backtraces; keep the first line.
    let message = message.replace("Internal torch error: ", "");
    let message = message.lines().next().unwrap_or_default().to_string();
    if neumf_core::failure::is_out_of_memory(&message) {
        raise(
            PgSqlErrorCode::ERRCODE_OUT_OF_MEMORY,
            message,
            Some("Try a smaller batch_size (or factors/layers), or device => 'cpu'."),
        )
    }
    raise(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, message, None)
}

/// Unwraps a result or raises it as an ERROR.
pub trait OrRaise<T> {
    fn or_raise(self, context: &str) -> T;
}

impl<T> OrRaise<T> for anyhow::Result<T> {
    #[track_caller]
    fn or_raise(self, context: &str) -> T {
        self.unwrap_or_else(|e| internal(context, &e))
    }
}

impl<T> OrRaise<T> for Result<T, pgrx::spi::Error> {
    #[track_caller]
    fn or_raise(self, context: &str) -> T {
        self.unwrap_or_else(|e| internal(context, &anyhow::Error::new(e)))
    }
}

//! Turning failures into clean PostgreSQL ERRORs: one short line naming the problem and quoting
//! the bad value, the SQLSTATE of its class, and what to do about it as a HINT.
//!
//! | class                                   | SQLSTATE |
//! |-----------------------------------------|----------|
//! | bad option value                        | 22023    |
//! | NULL model or source                    | 22004    |
//! | missing table / column, wrong type      | 42P01 / 42703 / 42804 |
//! | bad model name: empty or unprintable / too long | 42602 / 42622 |
//! | unknown model                           | 42704    |
//! | no active version, no GPU: wrong state  | 55000    |
//! | model already being trained             | 55006    |
//! | out of memory while training            | 53200    |
//! | cancel / statement_timeout (PostgreSQL's own, checked between batches) | 57014 |
//! | a stored model that does not decode     | XX001    |

use neumf_core::failure::{classify, Failure};
use neumf_core::options::NameError;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

#[track_caller]
pub fn raise_full(code: PgSqlErrorCode, message: impl Into<String>, detail: Option<String>, hint: Option<&str>) -> ! {
    let mut report = ErrorReport::new(code, message.into(), "neumf");
    if let Some(d) = detail {
        report = report.set_detail(d);
    }
    if let Some(h) = hint {
        report = report.set_hint(h);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR-level reports do not return")
}

#[track_caller]
pub fn raise(code: PgSqlErrorCode, message: impl Into<String>, hint: Option<&str>) -> ! {
    raise_full(code, message, None, hint)
}

/// Bad argument from the caller, with what to do instead.
#[track_caller]
pub fn invalid_argument_hint(message: impl Into<String>, hint: &str) -> ! {
    raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, message, Some(hint))
}

/// A NULL where a value is needed (functions that are not STRICT because of optional
/// arguments).
#[track_caller]
pub fn required<T>(value: Option<T>, argument: &str) -> T {
    value.unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{argument} must not be NULL"),
            Some("Only the options after it may be NULL (NULL takes their default)."),
        )
    })
}

/// The object exists but is not in a state that allows the operation.
#[track_caller]
pub fn wrong_state(message: impl Into<String>, hint: &str) -> ! {
    raise(PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, message, Some(hint))
}

/// A name refused for a new model.
#[track_caller]
pub fn bad_model_name(name: &str, error: &NameError) -> ! {
    let code = match error {
        NameError::TooLong { .. } => PgSqlErrorCode::ERRCODE_NAME_TOO_LONG,
        NameError::Empty | NameError::Unprintable => PgSqlErrorCode::ERRCODE_INVALID_NAME,
    };
    raise(
        code,
        error.message(name),
        Some("Model names are 1 to 63 bytes of printable text, without leading or trailing spaces."),
    )
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

/// `context: error: cause: …` on one line.
fn one_line(context: &str, err: &anyhow::Error) -> String {
    let mut message = format!("{context}: {err}");
    for cause in err.chain().skip(1) {
        message.push_str(&format!(": {cause}"));
    }
    // libtorch prefixes its own messages and appends C++ backtraces; keep the first line.
    let message = message.replace("Internal torch error: ", "");
    message.lines().next().unwrap_or_default().to_string()
}

/// A stored model that does not decode: damaged or written by something else.
#[track_caller]
pub fn corrupted(context: &str, err: &anyhow::Error) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
        one_line(context, err),
        Some("Retrain the model, or activate another version with neumf_activate()."),
    )
}

/// Anything else from the core, with the cause chain flattened into one line; training
/// failures with a known remedy get their own SQLSTATE and a hint.
#[track_caller]
pub fn internal(context: &str, err: &anyhow::Error) -> ! {
    let message = one_line(context, err);
    match classify(&message) {
        Failure::OutOfMemory => raise(
            PgSqlErrorCode::ERRCODE_OUT_OF_MEMORY,
            message,
            Some("Try a smaller batch_size (or factors/layers), or device => 'cpu'."),
        ),
        Failure::NoCudaDevice => wrong_state(message, "Use device => 'auto' (falls back to the CPU) or 'cpu'."),
        Failure::Other => raise(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, message, None),
    }
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

impl<T> OrRaise<T> for Result<T, serde_json::Error> {
    #[track_caller]
    fn or_raise(self, context: &str) -> T {
        self.unwrap_or_else(|e| internal(context, &anyhow::Error::new(e)))
    }
}

impl<T> OrRaise<T> for Result<T, pgrx::spi::Error> {
    #[track_caller]
    fn or_raise(self, context: &str) -> T {
        self.unwrap_or_else(|e| internal(context, &anyhow::Error::new(e)))
    }
}

//! Reading a caught panic.

use std::any::Any;

/// The message of a panic payload: the `&str` or `String` given to `panic!`, or a placeholder
/// naming the payload's type for anything else (as the standard panic hook does).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

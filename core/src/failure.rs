//! Failures with a known remedy, recognised in the text libtorch raises.

/// How the trainer says that CUDA was asked for and is not there.
pub const NO_CUDA_DEVICE: &str = "no CUDA device is available to this server";

/// A training failure, by what the user can do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    OutOfMemory,
    NoCudaDevice,
    Other,
}

pub fn classify(message: &str) -> Failure {
    if is_out_of_memory(message) {
        Failure::OutOfMemory
    } else if message.contains(NO_CUDA_DEVICE) {
        Failure::NoCudaDevice
    } else {
        Failure::Other
    }
}

/// Whether an error is an allocation failure: on a GPU libtorch says "CUDA out of memory. Tried
/// to allocate …", on the CPU "DefaultCPUAllocator: can't allocate memory: you tried to
/// allocate … bytes". Both call for a smaller batch (or model).
pub fn is_out_of_memory(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("out of memory") || m.contains("can't allocate memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_gpu_and_cpu_allocation_failures_only() {
        assert!(is_out_of_memory(
            "CUDA out of memory. Tried to allocate 64.00 GiB. GPU 0 has a total capacity of 79.11 GiB"
        ));
        assert!(!is_out_of_memory("batch_size 1000000 is larger than an epoch"));
        assert!(!is_out_of_memory("no CUDA device is available to this server"));
        assert_eq!(classify(&format!("device => 'cuda' was requested but {NO_CUDA_DEVICE}")), Failure::NoCudaDevice);
        assert_eq!(classify("CUDA out of memory. Tried to allocate 2 GiB"), Failure::OutOfMemory);
        assert_eq!(classify("shape mismatch"), Failure::Other);
    }

    /// The CPU message is libtorch's own: an allocation no machine can satisfy fails at once
    /// (before any page is touched), with text that must be recognised.
    #[cfg(feature = "torch")]
    #[test]
    fn recognises_libtorchs_own_cpu_allocation_failure() {
        let err = tch::Tensor::f_zeros([1i64 << 48], (tch::Kind::Float, tch::Device::Cpu))
            .expect_err("a 1 PiB tensor cannot be allocated");
        let message = err.to_string();
        assert!(is_out_of_memory(&message), "{message}");
    }
}

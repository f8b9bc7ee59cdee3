//! Allocator statistics and limits, devices, version.

use perch_mlx::{device_info, memory, Array, DeviceKind, Dtype};

#[test]
fn allocations_show_in_active_and_peak_memory() {
    let before = memory::active();
    memory::reset_peak();
    let big = Array::ones(&[1024, 1024], Dtype::Float32).unwrap();
    big.eval().unwrap();
    assert!(
        memory::active() >= before + 4 * 1024 * 1024,
        "active {} before {before}",
        memory::active()
    );
    assert!(memory::peak() >= 4 * 1024 * 1024);
    drop(big);
    let previous = memory::set_cache_limit(0);
    memory::clear_cache();
    assert_eq!(memory::cache(), 0);
    assert_eq!(memory::set_cache_limit(previous), 0);
}

#[test]
fn memory_limit_can_be_set_and_restored() {
    let original = memory::memory_limit();
    assert!(original > 0);
    assert_eq!(memory::set_memory_limit(1 << 30), original);
    assert_eq!(memory::memory_limit(), 1 << 30);
    memory::set_memory_limit(original);
}

#[test]
fn the_cpu_is_available_and_described() {
    assert!(perch_mlx::is_available(DeviceKind::Cpu).unwrap());
    let info = device_info(DeviceKind::Cpu).unwrap();
    assert!(!info.entries.is_empty());
    if cfg!(target_os = "linux") && std::env::var("PERCH_MLX").as_deref() != Ok("cuda") {
        assert_eq!(perch_mlx::default_device(), DeviceKind::Cpu);
        assert!(!perch_mlx::is_available(DeviceKind::Gpu).unwrap());
        assert_eq!(info.recommended_working_set(), None);
    }
}

#[test]
fn version_is_the_pinned_release() {
    assert_eq!(perch_mlx::version(), "0.32.4");
}

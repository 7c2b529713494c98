//! A software prefetch for the kernels on CubeCL's CPU runtime, which has none of its own.
//!
//! A kernel that scores against a resident item matrix streams it from memory once; with many
//! queries each row also costs many multiply-adds, so the core keeps too few loads in flight
//! for the hardware prefetchers to hide memory latency (the 16-query lanes scan ran at 57% of
//! the read bandwidth). [`prefetch`] asks for a line a few steps ahead without waiting for it.
//! It is an op of our own (`tailor.prefetch`) that CubeCL's LLVM lowering turns into
//! `llvm.prefetch` (a read, kept in every cache level): a hint that cannot fault and that
//! leaves the kernel's results unchanged.
//!
//! Only the CPU runtime lowers the op; it is used by kernels that only that runtime launches
//! (`dot_scores_lanes`, `dot_top_k_lanes`). Without the `cpu` feature it is a no-op.

#[cfg(feature = "cpu")]
pub use cpu::prefetch;

#[cfg(feature = "cpu")]
mod cpu {
    use cubecl::ir::prelude::*;
    use cubecl::prelude::*;
    use cubecl_llvm::shared::intrinsic::call_op;
    use cubecl_llvm::shared::to_llvm::{ToLLVMDialect, constant::insert_int_const, ty::llvm_mangled_ty};
    use pliron_llvm::types::VoidType;

    /// `llvm.prefetch`'s arguments after the address: a read, the highest temporal locality
    /// (every cache level), the data cache.
    const READ: i128 = 0;
    const KEEP_IN_ALL_LEVELS: i128 = 3;
    const DATA_CACHE: i128 = 1;

    /// Fetches the cache line holding `ptr` ahead of its use; no result, no fault.
    #[cube_op(name = "tailor.prefetch")]
    #[result_ty(none)]
    pub struct PrefetchOp {
        pub ptr: Value,
    }

    /// Starts loading the cache line that holds `at` (for example `&items[i]`) into cache.
    #[cube]
    pub fn prefetch(at: &f32) {
        intrinsic!(|scope| {
            let ptr = at.value(scope);
            let op = PrefetchOp::new(scope.ctx_mut(), ptr);
            scope.register(&op);
        })
    }

    #[op_interface_impl]
    impl ToLLVMDialect for PrefetchOp {
        fn rewrite(
            &self,
            ctx: &mut Context,
            rewriter: &mut DialectConversionRewriter,
            _operands_info: &OperandsInfo,
        ) -> Result<()> {
            let ptr = self.ptr(ctx);
            let name = format!("llvm.prefetch.{}", llvm_mangled_ty(ctx, ptr.get_type(ctx)));
            let args = vec![
                ptr,
                insert_int_const(ctx, rewriter, 32, READ),
                insert_int_const(ctx, rewriter, 32, KEEP_IN_ALL_LEVELS),
                insert_int_const(ctx, rewriter, 32, DATA_CACHE),
            ];
            let void_ty = VoidType::get(ctx).into();
            let call = call_op(ctx, &name, void_ty, args);
            rewriter.insert_op(ctx, &call);
            rewriter.erase_operation(ctx, self.get_operation());
            Ok(())
        }
    }
}

/// Without the CPU runtime nothing can lower a prefetch, and nothing launches the kernels that
/// ask for one.
#[cfg(not(feature = "cpu"))]
#[cubecl::cube]
pub fn prefetch(_at: &f32) {}

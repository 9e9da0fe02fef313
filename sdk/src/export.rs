//! The registration macros: one per role, each generating that role's export glue
//! in the plugin crate so the component exports exactly the role it implements.

include!(concat!(env!("OUT_DIR"), "/generate.rs"));

/// Glue shared by every role: the plugin value, `describe` and `configure`. Internal.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_plugin {
    ($world:tt, $ty:ty, $($role_impl:item)*) => {
        #[doc(hidden)]
        mod __monitor_bindings {
            $crate::__generate_role!($world);
        }

        #[doc(hidden)]
        struct __MonitorExport;

        ::std::thread_local! {
            static __MONITOR_PLUGIN: ::core::cell::RefCell<::core::option::Option<$ty>> =
                const { ::core::cell::RefCell::new(::core::option::Option::None) };
        }

        #[doc(hidden)]
        fn __monitor_with<R>(f: impl FnOnce(&mut $ty) -> R) -> R {
            __MONITOR_PLUGIN.with(|cell| {
                let mut slot = cell.borrow_mut();
                f(slot.get_or_insert_with(::core::default::Default::default))
            })
        }

        impl __monitor_bindings::exports::monitor::plugin::plugin::Guest for __MonitorExport {
            fn describe() -> $crate::PluginInfo {
                $crate::PluginInfo {
                    name: <$ty as $crate::Plugin>::NAME.unwrap_or(::std::env!("CARGO_PKG_NAME")).into(),
                    version: ::std::env!("CARGO_PKG_VERSION").into(),
                    summary: <$ty as $crate::Plugin>::SUMMARY.into(),
                    capabilities: <$ty as $crate::Plugin>::capabilities(),
                }
            }

            fn configure(config: ::std::string::String) -> ::core::result::Result<(), ::std::string::String> {
                __monitor_with(|p| $crate::Plugin::configure(p, &config))
            }
        }

        $($role_impl)*

        // Only a component exports anything: built for the host (`cargo build`
        // of a workspace, unit tests) the crate has no symbols a linker rejects.
        #[cfg(target_family = "wasm")]
        __monitor_bindings::export!(__MonitorExport with_types_in __monitor_bindings);
    };
}

/// Registers a [`MetricProvider`](crate::MetricProvider) as the plugin's export.
#[macro_export]
macro_rules! export_metric_provider {
    ($ty:ty) => {
        $crate::__export_plugin!("metric-provider", $ty,
            impl __monitor_bindings::exports::monitor::plugin::metrics::Guest for __MonitorExport {
                fn collect() -> ::core::result::Result<::std::vec::Vec<$crate::Metric>, ::std::string::String> {
                    __monitor_with(|p| $crate::MetricProvider::collect(p))
                }
            }
        );
    };
}

/// Registers a [`ProgressCalculator`](crate::ProgressCalculator) as the plugin's export.
#[macro_export]
macro_rules! export_progress_calculator {
    ($ty:ty) => {
        $crate::__export_plugin!("progress-calculator", $ty,
            impl __monitor_bindings::exports::monitor::plugin::progress::Guest for __MonitorExport {
                fn compute(
                    parent: $crate::ProgressNode,
                    children: ::std::vec::Vec<$crate::ProgressNode>,
                ) -> ::core::result::Result<$crate::ProgressEstimate, ::std::string::String> {
                    __monitor_with(|p| $crate::ProgressCalculator::compute(p, &parent, &children))
                }
            }
        );
    };
}

/// Registers an [`AlertHandler`](crate::AlertHandler) as the plugin's export.
#[macro_export]
macro_rules! export_alert_handler {
    ($ty:ty) => {
        $crate::__export_plugin!("alert-handler", $ty,
            impl __monitor_bindings::exports::monitor::plugin::alerts::Guest for __MonitorExport {
                fn handle(alert: $crate::Alert) -> ::core::result::Result<(), ::std::string::String> {
                    __monitor_with(|p| $crate::AlertHandler::handle(p, &alert))
                }
            }
        );
    };
}

/// Registers a [`DisplayFormatter`](crate::DisplayFormatter) as the plugin's export.
#[macro_export]
macro_rules! export_display_formatter {
    ($ty:ty) => {
        $crate::__export_plugin!("display-formatter", $ty,
            impl __monitor_bindings::exports::monitor::plugin::formatter::Guest for __MonitorExport {
                fn format(view: $crate::View) -> ::core::result::Result<::std::string::String, ::std::string::String> {
                    __monitor_with(|p| $crate::DisplayFormatter::format(p, &view))
                }
            }
        );
    };
}

//! The registration macros: [`export_plugin!`](crate::export_plugin) for any set of
//! roles, and one shorthand per role. Each generates the export glue in the plugin
//! crate, so the component exports exactly the roles it implements.

include!(concat!(env!("OUT_DIR"), "/generate.rs"));

/// Registers a plugin with the roles it implements, one or several:
/// `export_plugin!(Type: metric_provider, alert_handler)`. The roles are
/// `metric_provider`, `progress_calculator`, `alert_handler` and `display_formatter`;
/// the type implements each one's trait. One registration per crate.
#[macro_export]
macro_rules! export_plugin {
    ($ty:ty : $($role:ident),+ $(,)?) => {
        $crate::__export_plugin!([$($role),+], $ty, $($crate::__role_glue!($role, $ty);)+);
    };
}

/// Glue shared by every role: the plugin value, `describe` and `configure`. Internal.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_plugin {
    ($roles:tt, $ty:ty, $($role_impl:item)*) => {
        /// Two registrations in one crate meet here, and the compiler names this
        /// item: a plugin with several roles registers them all in one
        /// `export_plugin!(Type: role, role)`.
        #[allow(non_upper_case_globals, dead_code)]
        const one_registration_per_crate__for_several_roles_use__export_plugin: () = ();

        #[doc(hidden)]
        mod __monitor_bindings {
            $crate::__generate_world!($roles);
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

/// One role's export, calling the plugin's trait. Internal.
#[doc(hidden)]
#[macro_export]
macro_rules! __role_glue {
    (metric_provider, $ty:ty) => {
        impl __monitor_bindings::exports::monitor::plugin::metrics::Guest for __MonitorExport {
            fn collect() -> ::core::result::Result<::std::vec::Vec<$crate::Metric>, ::std::string::String> {
                __monitor_with(|p| <$ty as $crate::MetricProvider>::collect(p))
            }
        }
    };
    (progress_calculator, $ty:ty) => {
        impl __monitor_bindings::exports::monitor::plugin::progress::Guest for __MonitorExport {
            fn compute(
                parent: $crate::ProgressNode,
                children: ::std::vec::Vec<$crate::ProgressNode>,
            ) -> ::core::result::Result<$crate::ProgressEstimate, ::std::string::String> {
                __monitor_with(|p| <$ty as $crate::ProgressCalculator>::compute(p, &parent, &children))
            }
        }
    };
    (alert_handler, $ty:ty) => {
        impl __monitor_bindings::exports::monitor::plugin::alert_events::Guest for __MonitorExport {
            fn handle(event: $crate::AlertEvent) -> ::core::result::Result<(), ::std::string::String> {
                __monitor_with(|p| <$ty as $crate::AlertHandler>::handle(p, &event))
            }
        }
    };
    (display_formatter, $ty:ty) => {
        impl __monitor_bindings::exports::monitor::plugin::formatter::Guest for __MonitorExport {
            fn format(view: $crate::View) -> ::core::result::Result<::std::string::String, ::std::string::String> {
                __monitor_with(|p| <$ty as $crate::DisplayFormatter>::format(p, &view))
            }
        }
    };
    ($other:ident, $ty:ty) => {};
}

/// Registers a [`MetricProvider`](crate::MetricProvider): `export_plugin!(Type: metric_provider)`.
#[macro_export]
macro_rules! export_metric_provider {
    ($ty:ty) => {
        $crate::export_plugin!($ty: metric_provider);
    };
}

/// Registers a [`ProgressCalculator`](crate::ProgressCalculator): `export_plugin!(Type: progress_calculator)`.
#[macro_export]
macro_rules! export_progress_calculator {
    ($ty:ty) => {
        $crate::export_plugin!($ty: progress_calculator);
    };
}

/// Registers an [`AlertHandler`](crate::AlertHandler): `export_plugin!(Type: alert_handler)`.
#[macro_export]
macro_rules! export_alert_handler {
    ($ty:ty) => {
        $crate::export_plugin!($ty: alert_handler);
    };
}

/// Registers a [`DisplayFormatter`](crate::DisplayFormatter): `export_plugin!(Type: display_formatter)`.
#[macro_export]
macro_rules! export_display_formatter {
    ($ty:ty) => {
        $crate::export_plugin!($ty: display_formatter);
    };
}

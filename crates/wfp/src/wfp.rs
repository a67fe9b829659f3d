//! The WFP applier (Windows only): a dynamic session, Lectern's sublayer,
//! and one transaction per `apply`/`clear`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};

use windows_sys::core::GUID;
use windows_sys::Win32::Foundation::{FWP_E_ALREADY_EXISTS, FWP_E_FILTER_NOT_FOUND, HANDLE};
use windows_sys::Win32::NetworkManagement::WindowsFilteringPlatform::*;
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
use windows_sys::Win32::System::Rpc::RPC_C_AUTHN_WINNT;

use crate::rules::{Action, Condition, Filter, Layer};
use crate::{FirewallBackend, WfpError, SUBLAYER_KEY, SUBLAYER_NAME};

const ERROR_ACCESS_DENIED: u32 = 5;
const ERROR_NOT_SUPPORTED: u32 = 50;
const ERROR_CALL_NOT_IMPLEMENTED: u32 = 120;
/// RPC_S_SERVER_UNAVAILABLE / EPT_S_NOT_REGISTERED: the Base Filtering
/// Engine service is stopped or absent.
const RPC_S_SERVER_UNAVAILABLE: u32 = 1722;
const EPT_S_NOT_REGISTERED: u32 = 1753;
const FWP_ALREADY_EXISTS: u32 = FWP_E_ALREADY_EXISTS as u32;
const FWP_FILTER_NOT_FOUND: u32 = FWP_E_FILTER_NOT_FOUND as u32;

/// Weight of Lectern's sublayer among all sublayers: evaluated early. A
/// block in any sublayer still wins over our permits (WFP arbitration), so
/// Lectern never opens what the Windows Firewall closes.
const SUBLAYER_WEIGHT: u16 = 0xFFFF;

/// An open dynamic WFP session and the filters it holds.
pub(crate) struct WfpEngine {
    handle: HANDLE,
    sublayer_added: bool,
    filter_ids: Vec<u64>,
    /// App ids (FwpmGetAppIdFromFileName0 blobs), freed on drop.
    app_ids: HashMap<PathBuf, *mut FWP_BYTE_BLOB>,
}

// The engine handle may be used from any thread (WFP's handles are not
// thread-affine); the raw pointers are owned by this struct alone.
unsafe impl Send for WfpEngine {}

/// The Wine version, from ntdll's `wine_get_version` export.
pub(crate) fn wine_version() -> Option<String> {
    let ntdll = wide("ntdll.dll");
    // SAFETY: plain Win32 calls on a NUL-terminated name; the returned
    // function, when present, takes no arguments and returns a static C string.
    unsafe {
        let module = GetModuleHandleW(ntdll.as_ptr());
        if module.is_null() {
            return None;
        }
        let f = GetProcAddress(module, c"wine_get_version".as_ptr().cast())?;
        let get: extern "C" fn() -> *const std::ffi::c_char = std::mem::transmute(f);
        let v = get();
        Some(if v.is_null() {
            "unknown".into()
        } else {
            std::ffi::CStr::from_ptr(v).to_string_lossy().into_owned()
        })
    }
}

impl WfpEngine {
    /// Opens a dynamic session (objects vanish when the handle closes).
    pub(crate) fn open() -> Result<WfpEngine, WfpError> {
        if let Some(version) = wine_version() {
            // Wine's fwpuclnt reports success and filters nothing.
            return Err(WfpError::Unsupported {
                reason: format!("Wine {version} has no Windows Filtering Platform"),
            });
        }
        let mut name = wide("Lectern agent");
        // SAFETY: an all-zero FWPM_SESSION0 is a valid default session.
        let mut session: FWPM_SESSION0 = unsafe { std::mem::zeroed() };
        session.flags = FWPM_SESSION_FLAG_DYNAMIC;
        session.displayData.name = name.as_mut_ptr();
        let mut handle: HANDLE = null_mut();
        // SAFETY: every pointer is valid for the call; `handle` receives the engine.
        let rc =
            unsafe { FwpmEngineOpen0(null(), RPC_C_AUTHN_WINNT, null(), &session, &mut handle) };
        check("FwpmEngineOpen0", rc)?;
        Ok(WfpEngine {
            handle,
            sublayer_added: false,
            filter_ids: Vec::new(),
            app_ids: HashMap::new(),
        })
    }

    /// Runs `body` in a transaction: committed when it succeeds, aborted
    /// (nothing changes) when it fails.
    fn transaction(
        &mut self,
        body: impl FnOnce(&mut Self) -> Result<(), WfpError>,
    ) -> Result<(), WfpError> {
        // SAFETY: the handle is open for the life of self.
        check("FwpmTransactionBegin0", unsafe {
            FwpmTransactionBegin0(self.handle, 0)
        })?;
        match body(self) {
            Ok(()) => check("FwpmTransactionCommit0", unsafe {
                FwpmTransactionCommit0(self.handle)
            }),
            Err(e) => {
                // SAFETY: as above; the abort's own failure changes nothing for the caller.
                unsafe { FwpmTransactionAbort0(self.handle) };
                Err(e)
            }
        }
    }

    fn ensure_sublayer(&mut self) -> Result<(), WfpError> {
        if self.sublayer_added {
            return Ok(());
        }
        let mut name = wide(SUBLAYER_NAME);
        // SAFETY: all-zero is a valid FWPM_SUBLAYER0 (no provider, no flags:
        // not persistent, so it goes with the dynamic session).
        let mut sublayer: FWPM_SUBLAYER0 = unsafe { std::mem::zeroed() };
        sublayer.subLayerKey = GUID::from_u128(SUBLAYER_KEY);
        sublayer.displayData.name = name.as_mut_ptr();
        sublayer.weight = SUBLAYER_WEIGHT;
        // SAFETY: `sublayer` and `name` outlive the call.
        let rc = unsafe { FwpmSubLayerAdd0(self.handle, &sublayer, null_mut()) };
        if rc != FWP_ALREADY_EXISTS {
            check("FwpmSubLayerAdd0", rc)?;
        }
        self.sublayer_added = true;
        Ok(())
    }

    fn delete_filters(&mut self) -> Result<(), WfpError> {
        for id in std::mem::take(&mut self.filter_ids) {
            // SAFETY: the handle is open; an id already gone is fine.
            let rc = unsafe { FwpmFilterDeleteById0(self.handle, id) };
            if rc != FWP_FILTER_NOT_FOUND {
                check("FwpmFilterDeleteById0", rc)?;
            }
        }
        Ok(())
    }

    fn add_filter(&mut self, filter: &Filter) -> Result<u64, WfpError> {
        // Everything the FWPM structures point to lives in `storage` until
        // FwpmFilterAdd0 has copied it.
        let mut storage = Storage::default();
        let mut conditions = Vec::with_capacity(filter.conditions.len());
        for c in &filter.conditions {
            conditions.push(self.condition(c, &mut storage)?);
        }
        let mut name = wide(&filter.name);
        // SAFETY: all-zero is a valid FWPM_FILTER0 to fill in.
        let mut f: FWPM_FILTER0 = unsafe { std::mem::zeroed() };
        f.displayData.name = name.as_mut_ptr();
        f.flags = FWPM_FILTER_FLAG_NONE;
        f.layerKey = match filter.layer {
            Layer::AleAuthConnectV4 => FWPM_LAYER_ALE_AUTH_CONNECT_V4,
            Layer::AleAuthConnectV6 => FWPM_LAYER_ALE_AUTH_CONNECT_V6,
        };
        f.subLayerKey = GUID::from_u128(SUBLAYER_KEY);
        f.weight.r#type = FWP_UINT8;
        f.weight.Anonymous.uint8 = filter.weight;
        f.numFilterConditions = conditions.len() as u32;
        f.filterCondition = if conditions.is_empty() {
            null_mut()
        } else {
            conditions.as_mut_ptr()
        };
        f.action.r#type = match filter.action {
            Action::Permit => FWP_ACTION_PERMIT,
            Action::Block => FWP_ACTION_BLOCK,
        };
        let mut id = 0u64;
        // SAFETY: `f`, `conditions`, `name` and `storage` outlive the call.
        let rc = unsafe { FwpmFilterAdd0(self.handle, &f, null_mut(), &mut id) };
        check("FwpmFilterAdd0", rc)?;
        drop(storage);
        Ok(id)
    }

    fn condition(
        &mut self,
        c: &Condition,
        storage: &mut Storage,
    ) -> Result<FWPM_FILTER_CONDITION0, WfpError> {
        // SAFETY: all-zero is a valid condition to fill in.
        let mut out: FWPM_FILTER_CONDITION0 = unsafe { std::mem::zeroed() };
        out.matchType = FWP_MATCH_EQUAL;
        match c {
            Condition::RemoteAddress(std::net::IpAddr::V4(a)) => {
                out.fieldKey = FWPM_CONDITION_IP_REMOTE_ADDRESS;
                out.conditionValue.r#type = FWP_UINT32;
                // WFP takes IPv4 addresses as host-order integers.
                out.conditionValue.Anonymous.uint32 = u32::from(*a);
            }
            Condition::RemoteAddress(std::net::IpAddr::V6(a)) => {
                out.fieldKey = FWPM_CONDITION_IP_REMOTE_ADDRESS;
                out.conditionValue.r#type = FWP_BYTE_ARRAY16_TYPE;
                let mut bytes = Box::new(FWP_BYTE_ARRAY16 {
                    byteArray16: a.octets(),
                });
                out.conditionValue.Anonymous.byteArray16 = &mut *bytes;
                storage.v6.push(bytes);
            }
            Condition::RemotePort(p) => {
                out.fieldKey = FWPM_CONDITION_IP_REMOTE_PORT;
                out.conditionValue.r#type = FWP_UINT16;
                out.conditionValue.Anonymous.uint16 = *p;
            }
            Condition::Loopback => {
                out.fieldKey = FWPM_CONDITION_FLAGS;
                out.matchType = FWP_MATCH_FLAGS_ALL_SET;
                out.conditionValue.r#type = FWP_UINT32;
                out.conditionValue.Anonymous.uint32 = FWP_CONDITION_FLAG_IS_LOOPBACK;
            }
            Condition::AppId(exe) => {
                out.fieldKey = FWPM_CONDITION_ALE_APP_ID;
                out.conditionValue.r#type = FWP_BYTE_BLOB_TYPE;
                out.conditionValue.Anonymous.byteBlob = self.app_id(exe)?;
            }
        }
        Ok(out)
    }

    /// The WFP app id of `exe` (its NT device path), looked up once.
    fn app_id(&mut self, exe: &Path) -> Result<*mut FWP_BYTE_BLOB, WfpError> {
        if let Some(blob) = self.app_ids.get(exe) {
            return Ok(*blob);
        }
        let path = wide(&exe.to_string_lossy());
        let mut blob: *mut FWP_BYTE_BLOB = null_mut();
        // SAFETY: `path` is NUL-terminated; `blob` receives memory freed in Drop.
        check("FwpmGetAppIdFromFileName0", unsafe {
            FwpmGetAppIdFromFileName0(path.as_ptr(), &mut blob)
        })?;
        self.app_ids.insert(exe.to_path_buf(), blob);
        Ok(blob)
    }
}

impl FirewallBackend for WfpEngine {
    fn apply(&mut self, filters: &[Filter]) -> Result<(), WfpError> {
        let old = self.filter_ids.clone();
        let result = self.transaction(|engine| {
            engine.ensure_sublayer()?;
            engine.delete_filters()?;
            for filter in filters {
                let id = engine.add_filter(filter)?;
                engine.filter_ids.push(id);
            }
            Ok(())
        });
        if result.is_err() {
            // Aborted: the old filters are still in force.
            self.filter_ids = old;
        }
        result
    }

    fn clear(&mut self) -> Result<(), WfpError> {
        let old = self.filter_ids.clone();
        let result = self.transaction(|engine| engine.delete_filters());
        if result.is_err() {
            self.filter_ids = old;
        }
        result
    }
}

impl Drop for WfpEngine {
    fn drop(&mut self) {
        for (_, mut blob) in self.app_ids.drain() {
            // SAFETY: each blob came from FwpmGetAppIdFromFileName0.
            unsafe { FwpmFreeMemory0((&mut blob as *mut *mut FWP_BYTE_BLOB).cast()) };
        }
        // SAFETY: closing the dynamic session removes its sublayer and filters.
        unsafe { FwpmEngineClose0(self.handle) };
    }
}

/// Buffers that conditions point into, kept alive across FwpmFilterAdd0.
#[derive(Default)]
struct Storage {
    // Boxed: conditions point at each array, and pushing to the Vec must
    // not move the ones already pointed at.
    #[allow(clippy::vec_box)]
    v6: Vec<Box<FWP_BYTE_ARRAY16>>,
}

fn check(call: &'static str, rc: u32) -> Result<(), WfpError> {
    match rc {
        0 => Ok(()),
        ERROR_ACCESS_DENIED => Err(WfpError::AccessDenied { call }),
        ERROR_NOT_SUPPORTED
        | ERROR_CALL_NOT_IMPLEMENTED
        | RPC_S_SERVER_UNAVAILABLE
        | EPT_S_NOT_REGISTERED => Err(WfpError::Unsupported {
            reason: format!("{call} returned {rc}: the Base Filtering Engine is not available"),
        }),
        code => Err(WfpError::Api { call, code }),
    }
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

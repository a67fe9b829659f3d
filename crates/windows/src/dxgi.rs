//! DXGI Desktop Duplication (Windows 8+): the GPU hands over the composed
//! desktop, much cheaper than GDI on large screens.
//!
//! `windows-sys` has no COM interfaces, so the few methods used are called
//! through their vtable slots. The slot numbers and struct sizes below were
//! checked against mingw-w64's `d3d11.h`/`dxgi1_2.h` with `_Static_assert`s
//! (`offsetof(ID3D11DeviceContextVtbl, CopyResource) / 8 == 47`, ...).
//! Wine 8 implements no duplication (`DuplicateOutput` fails), so this is
//! only exercised up to that failure by the tests.

use std::ffi::c_void;

use lectern_desktop::DesktopError;
use windows_sys::core::GUID;

use crate::capture::{Bgra, Capturer};

type Hresult = i32;

#[link(name = "d3d11")]
extern "system" {
    fn D3D11CreateDevice(
        adapter: *mut c_void,
        driver_type: i32,
        software: *mut c_void,
        flags: u32,
        feature_levels: *const i32,
        n_levels: u32,
        sdk_version: u32,
        device: *mut *mut c_void,
        level: *mut i32,
        context: *mut *mut c_void,
    ) -> Hresult;
}

const D3D_DRIVER_TYPE_HARDWARE: i32 = 1;
const D3D11_SDK_VERSION: u32 = 7;
const D3D11_USAGE_STAGING: u32 = 3;
const D3D11_CPU_ACCESS_READ: u32 = 0x20000;
const D3D11_MAP_READ: u32 = 1;
const DXGI_ERROR_WAIT_TIMEOUT: Hresult = 0x887A_0027_u32 as i32;
/// How long a grab waits for the first frame when nothing has changed yet.
const ACQUIRE_TIMEOUT_MS: u32 = 200;

const IID_IDXGI_DEVICE: GUID = GUID::from_u128(0x54ec77fa_1377_44e6_8c32_88fd5f44c84c);
const IID_IDXGI_OUTPUT1: GUID = GUID::from_u128(0x00cddea8_939b_4b83_a340_a685226666cc);
const IID_ID3D11_TEXTURE2D: GUID = GUID::from_u128(0x6f15aaf2_d208_4e89_9ab4_489535d34f9c);

// Vtable slots (see the module comment).
const QUERY_INTERFACE: usize = 0;
const RELEASE: usize = 2;
const DEVICE_CREATE_TEXTURE2D: usize = 5;
const CONTEXT_MAP: usize = 14;
const CONTEXT_UNMAP: usize = 15;
const CONTEXT_COPY_RESOURCE: usize = 47;
const TEXTURE2D_GET_DESC: usize = 10;
const DXGI_DEVICE_GET_ADAPTER: usize = 7;
const ADAPTER_ENUM_OUTPUTS: usize = 7;
const OUTPUT1_DUPLICATE_OUTPUT: usize = 22;
const DUPL_ACQUIRE_NEXT_FRAME: usize = 8;
const DUPL_RELEASE_FRAME: usize = 14;

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Texture2dDesc {
    width: u32,
    height: u32,
    mip_levels: u32,
    array_size: u32,
    format: u32,
    sample_count: u32,
    sample_quality: u32,
    usage: u32,
    bind_flags: u32,
    cpu_access_flags: u32,
    misc_flags: u32,
}

#[repr(C)]
struct Mapped {
    data: *mut c_void,
    row_pitch: u32,
    depth_pitch: u32,
}

/// `DXGI_OUTDUPL_FRAME_INFO` is 48 bytes; only its size matters here.
#[repr(C, align(8))]
struct FrameInfo([u8; 48]);

/// An owned COM interface pointer, released on drop.
struct Com(*mut c_void);

impl Com {
    /// The function in vtable slot `i`, as `F` (a `extern "system" fn` type).
    ///
    /// # Safety
    /// `F` must be the exact signature of that slot.
    unsafe fn slot<F: Copy>(&self, i: usize) -> F {
        let vtable = *(self.0 as *const *const usize);
        std::mem::transmute_copy(&*vtable.add(i))
    }

    unsafe fn query(&self, iid: &GUID) -> Result<Com, Hresult> {
        let f: unsafe extern "system" fn(*mut c_void, *const GUID, *mut *mut c_void) -> Hresult =
            self.slot(QUERY_INTERFACE);
        let mut out = std::ptr::null_mut();
        check(f(self.0, iid, &mut out))?;
        Ok(Com(out))
    }
}

impl Drop for Com {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: slot 2 of every COM interface is Release.
            unsafe {
                let f: unsafe extern "system" fn(*mut c_void) -> u32 = self.slot(RELEASE);
                f(self.0);
            }
        }
    }
}

fn check(hr: Hresult) -> Result<(), Hresult> {
    if hr < 0 {
        Err(hr)
    } else {
        Ok(())
    }
}

fn failed(step: &str, hr: Hresult) -> DesktopError {
    DesktopError::Failed(format!(
        "DXGI desktop duplication: {step} failed (HRESULT {:#010x})",
        hr as u32
    ))
}

/// Captures the primary output through DXGI Desktop Duplication.
pub struct DxgiCapturer {
    device: Com,
    context: Com,
    dupl: Com,
    staging: Option<(Com, Texture2dDesc)>,
    last: Option<Bgra>,
}

// SAFETY: the D3D11 device is free-threaded; the immediate context and the
// duplication are only used through `&mut self`, one thread at a time.
unsafe impl Send for DxgiCapturer {}

impl DxgiCapturer {
    /// Creates a D3D11 device on the default adapter and duplicates its
    /// first output. Fails on Windows 7, in session 0, over some RDP
    /// sessions and under Wine.
    pub fn open() -> Result<Self, DesktopError> {
        // SAFETY: documented D3D11/DXGI calls; every interface is owned by a
        // `Com` and released on every path.
        unsafe {
            let (mut dev, mut ctx) = (std::ptr::null_mut(), std::ptr::null_mut());
            let hr = D3D11CreateDevice(
                std::ptr::null_mut(),
                D3D_DRIVER_TYPE_HARDWARE,
                std::ptr::null_mut(),
                0,
                std::ptr::null(),
                0,
                D3D11_SDK_VERSION,
                &mut dev,
                std::ptr::null_mut(),
                &mut ctx,
            );
            check(hr).map_err(|hr| failed("D3D11CreateDevice", hr))?;
            let (device, context) = (Com(dev), Com(ctx));
            let dxgi = device
                .query(&IID_IDXGI_DEVICE)
                .map_err(|hr| failed("IDXGIDevice", hr))?;
            let adapter =
                out_param(&dxgi, DXGI_DEVICE_GET_ADAPTER).map_err(|hr| failed("GetAdapter", hr))?;
            let output = {
                let f: unsafe extern "system" fn(*mut c_void, u32, *mut *mut c_void) -> Hresult =
                    adapter.slot(ADAPTER_ENUM_OUTPUTS);
                let mut out = std::ptr::null_mut();
                check(f(adapter.0, 0, &mut out)).map_err(|hr| failed("EnumOutputs", hr))?;
                Com(out)
            };
            let output1 = output
                .query(&IID_IDXGI_OUTPUT1)
                .map_err(|hr| failed("IDXGIOutput1", hr))?;
            let dupl = {
                let f: unsafe extern "system" fn(
                    *mut c_void,
                    *mut c_void,
                    *mut *mut c_void,
                ) -> Hresult = output1.slot(OUTPUT1_DUPLICATE_OUTPUT);
                let mut out = std::ptr::null_mut();
                check(f(output1.0, device.0, &mut out))
                    .map_err(|hr| failed("DuplicateOutput", hr))?;
                Com(out)
            };
            Ok(DxgiCapturer {
                device,
                context,
                dupl,
                staging: None,
                last: None,
            })
        }
    }

    /// Copies the acquired desktop texture into a CPU-readable one and reads it.
    unsafe fn read(&mut self, resource: &Com) -> Result<Bgra, DesktopError> {
        let tex = resource
            .query(&IID_ID3D11_TEXTURE2D)
            .map_err(|hr| failed("ID3D11Texture2D", hr))?;
        let mut desc = Texture2dDesc::default();
        let get_desc: unsafe extern "system" fn(*mut c_void, *mut Texture2dDesc) =
            tex.slot(TEXTURE2D_GET_DESC);
        get_desc(tex.0, &mut desc);
        let staging = self.staging_for(desc)?;
        let copy: unsafe extern "system" fn(*mut c_void, *mut c_void, *mut c_void) =
            self.context.slot(CONTEXT_COPY_RESOURCE);
        copy(self.context.0, staging, tex.0);
        let map: unsafe extern "system" fn(
            *mut c_void,
            *mut c_void,
            u32,
            u32,
            u32,
            *mut Mapped,
        ) -> Hresult = self.context.slot(CONTEXT_MAP);
        let mut m = Mapped {
            data: std::ptr::null_mut(),
            row_pitch: 0,
            depth_pitch: 0,
        };
        check(map(self.context.0, staging, 0, D3D11_MAP_READ, 0, &mut m))
            .map_err(|hr| failed("Map", hr))?;
        let (w, h) = (desc.width as usize, desc.height as usize);
        let mut pixels = Vec::with_capacity(w * h * 4);
        for y in 0..h {
            let row = (m.data as *const u8).add(y * m.row_pitch as usize);
            pixels.extend_from_slice(std::slice::from_raw_parts(row, w * 4));
        }
        let unmap: unsafe extern "system" fn(*mut c_void, *mut c_void, u32) =
            self.context.slot(CONTEXT_UNMAP);
        unmap(self.context.0, staging, 0);
        Ok(Bgra {
            width: desc.width,
            height: desc.height,
            pixels,
        })
    }

    /// A staging texture matching `desc`, made once per screen size.
    unsafe fn staging_for(&mut self, desc: Texture2dDesc) -> Result<*mut c_void, DesktopError> {
        let want = Texture2dDesc {
            mip_levels: 1,
            array_size: 1,
            sample_count: 1,
            sample_quality: 0,
            usage: D3D11_USAGE_STAGING,
            bind_flags: 0,
            cpu_access_flags: D3D11_CPU_ACCESS_READ,
            misc_flags: 0,
            ..desc
        };
        let same = |d: &Texture2dDesc| {
            (d.width, d.height, d.format) == (want.width, want.height, want.format)
        };
        if !self.staging.as_ref().is_some_and(|(_, d)| same(d)) {
            let create: unsafe extern "system" fn(
                *mut c_void,
                *const Texture2dDesc,
                *const c_void,
                *mut *mut c_void,
            ) -> Hresult = self.device.slot(DEVICE_CREATE_TEXTURE2D);
            let mut out = std::ptr::null_mut();
            check(create(self.device.0, &want, std::ptr::null(), &mut out))
                .map_err(|hr| failed("CreateTexture2D", hr))?;
            self.staging = Some((Com(out), want));
        }
        Ok(self
            .staging
            .as_ref()
            .map_or(std::ptr::null_mut(), |(c, _)| c.0))
    }
}

/// Calls a `(this, out) -> HRESULT` method and owns what it returns.
unsafe fn out_param(obj: &Com, slot: usize) -> Result<Com, Hresult> {
    let f: unsafe extern "system" fn(*mut c_void, *mut *mut c_void) -> Hresult = obj.slot(slot);
    let mut out = std::ptr::null_mut();
    check(f(obj.0, &mut out))?;
    Ok(Com(out))
}

impl Capturer for DxgiCapturer {
    fn name(&self) -> &'static str {
        "dxgi"
    }

    fn grab(&mut self) -> Result<Bgra, DesktopError> {
        // SAFETY: see `open`; the frame is released on every path after a
        // successful acquire.
        unsafe {
            let acquire: unsafe extern "system" fn(
                *mut c_void,
                u32,
                *mut FrameInfo,
                *mut *mut c_void,
            ) -> Hresult = self.dupl.slot(DUPL_ACQUIRE_NEXT_FRAME);
            let mut info = FrameInfo([0; 48]);
            let mut res = std::ptr::null_mut();
            let hr = acquire(self.dupl.0, ACQUIRE_TIMEOUT_MS, &mut info, &mut res);
            if hr == DXGI_ERROR_WAIT_TIMEOUT {
                // Nothing changed since the last frame.
                return self
                    .last
                    .clone()
                    .ok_or_else(|| failed("AcquireNextFrame (no first frame)", hr));
            }
            check(hr).map_err(|hr| failed("AcquireNextFrame", hr))?;
            let resource = Com(res);
            let r = self.read(&resource);
            drop(resource);
            let release: unsafe extern "system" fn(*mut c_void) -> Hresult =
                self.dupl.slot(DUPL_RELEASE_FRAME);
            release(self.dupl.0);
            let img = r?;
            self.last = Some(img.clone());
            Ok(img)
        }
    }
}

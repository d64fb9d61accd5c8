"""The one place that imports Open3D: loads libusb first (the wheel links it but many hosts lack it).

``open3d-cpu`` needs ``libusb-1.0.so.0`` at import time. The ``libusb-package`` wheel ships that
library; loading it with ``RTLD_GLOBAL`` before ``import open3d`` satisfies the dynamic linker
without root. Import is lazy so that the plugin, its model and its metrics load without Open3D.
"""

from __future__ import annotations

import ctypes
import functools
from types import ModuleType

__all__ = ["open3d"]


@functools.cache
def open3d() -> ModuleType:
    """The ``open3d`` module, importing it (after libusb) on first use."""
    try:
        import libusb_package

        path = libusb_package.get_library_path()
        if path is not None:
            ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    except (ImportError, OSError):  # a system libusb may still be there; let the import say what is missing
        pass
    try:
        import open3d as o3d
    except ImportError as exc:
        raise ImportError(
            f"open3d could not be imported ({exc}); install open3d-cpu and libusb-package "
            "(or the system package libusb-1.0-0)"
        ) from exc
    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    return o3d

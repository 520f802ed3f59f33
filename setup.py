"""Build of the optional C extension; everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        # The element walk of the fast header reader (src/dicomsieve/scan/_native.c). It is
        # optional: without a C compiler the install goes on and the Python walk is used.
        Extension(
            "dicomsieve.scan._native",
            ["src/dicomsieve/scan/_native.c"],
            optional=True,
            extra_compile_args=["-O2"],
        )
    ]
)

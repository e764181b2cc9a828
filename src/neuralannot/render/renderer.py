"""Headless CPU mesh renderer: moderngl on an EGL standalone context (Mesa llvmpipe when no GPU).

Conventions: vertices are in the OpenCV camera frame (x right, y down, z forward, meters); ``K`` is the
3x3 pixel intrinsics matrix with pixel centers at integer coordinates; images are returned top row first.

The GL context is created lazily on first use and belongs to the process that created it: never create
it in a parent process before forking (DataLoader workers hang); build one renderer per worker instead.
A renderer with no context yet pickles cleanly (only its settings travel).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SYSTEM_PACKAGES = "libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri"
_MAX_FRAMEBUFFERS = 4  # per-size framebuffer cache (overlay on report images of many sizes)

_VERT = """
#version 330
uniform mat4 P;
in vec3 in_pos;
in vec3 in_col;
out vec3 v_pos;
out vec3 v_col;
#ifdef SMOOTH
in vec3 in_nrm;
out vec3 v_nrm;
#endif
void main() {
    v_pos = in_pos;
    v_col = in_col;
#ifdef SMOOTH
    v_nrm = in_nrm;
#endif
    gl_Position = P * vec4(in_pos, 1.0);
}
"""

_FRAG = """
#version 330
uniform vec3 to_light;  // unit vector from the surface towards the light, camera frame
uniform float ambient;
in vec3 v_pos;
in vec3 v_col;
#ifdef SMOOTH
in vec3 v_nrm;
#endif
layout(location = 0) out vec4 f_col;
layout(location = 1) out vec2 f_zcov;  // (camera z, coverage)
void main() {
#ifdef SMOOTH
    vec3 n = normalize(v_nrm);
#else
    vec3 n = normalize(cross(dFdx(v_pos), dFdy(v_pos)));
#endif
    if (dot(n, v_pos) > 0.0) n = -n;  // two-sided: always face the camera
    float shade = ambient + (1.0 - ambient) * max(dot(n, to_light), 0.0);
    f_col = vec4(v_col * shade, 1.0);
    f_zcov = vec2(v_pos.z, 1.0);
}
"""


@dataclass
class RenderResult:
    """One rendered frame.

    Attributes:
        image: (H, W, 3) uint8, the shaded mesh composited over the background (black when none).
        mask: (H, W) bool, pixels covered by any mesh (coverage > 0.5 when multisampling).
        depth: (H, W) float32, camera-frame z in meters of the nearest surface; 0 where empty.
    """

    image: np.ndarray
    mask: np.ndarray
    depth: np.ndarray


def _np(x: Any, dtype: Any = np.float32) -> np.ndarray:
    """Torch tensor or array-like -> contiguous numpy array of ``dtype``."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(x, dtype=dtype)


def _colors(color: Any, n: int) -> np.ndarray:
    """(3,) per-mesh or (n, 3) per-vertex colour, floats in [0, 1] or uint8 -> (n, 3) float32."""
    c = _np(color, None) if not isinstance(color, tuple | list) else np.asarray(color)
    c = c.astype(np.float32) / 255.0 if c.dtype == np.uint8 else c.astype(np.float32)
    if c.shape not in ((3,), (n, 3)):
        raise ValueError(f"color must have shape (3,) or ({n}, 3), got {c.shape}")
    return np.broadcast_to(c, (n, 3))


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals. vertices (V, 3), faces (F, 3) -> (V, 3) float32."""
    a = vertices[faces[:, 0]]
    e1, e2 = (vertices[faces[:, 1]] - a).T, (vertices[faces[:, 2]] - a).T
    fn = np.stack([e1[i] * e2[j] - e1[j] * e2[i] for i, j in ((1, 2), (2, 0), (0, 1))])  # (3, F) cross
    idx, n = faces.T.reshape(-1), len(vertices)  # corner-major, so each face normal repeats as a tile
    vn = np.stack([np.bincount(idx, np.tile(fn[k], 3), minlength=n) for k in range(3)], axis=1)
    return (vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def create_context() -> Any:
    """A standalone moderngl context: EGL first (headless), then the platform default."""
    try:
        import moderngl
    except ImportError as e:
        raise ImportError("MeshRenderer needs moderngl: pip install 'neuralannot[render]'") from e
    errors = []
    for kwargs in ({"backend": "egl"}, {}):
        try:
            return moderngl.create_standalone_context(require=330, **kwargs)
        except Exception as e:  # any failure means "try the next backend"
            errors.append(f"{kwargs.get('backend', 'default')}: {e}")
    raise RuntimeError(
        "Could not create an OpenGL 3.3 context for headless rendering ("
        + "; ".join(errors)
        + f"). Install the system packages {SYSTEM_PACKAGES} (run `bash scripts/install_system_deps.sh`)."
    )


class MeshRenderer:
    """Rasterizes triangle meshes with Lambertian shading into colour, mask and depth.

    Args:
        width, height: default output size in pixels (``overlay`` renders at its image's size).
        samples: MSAA samples (0 = off; 4 costs about 2x). Depth at antialiased edges is the mean z
            of the covered samples.
        near, far: clip planes in meters; geometry outside them (or behind the camera) is clipped.
        smooth: default shading, interpolated vertex normals (True) or flat faces (False, faster).
    """

    def __init__(
        self,
        width: int = 256,
        height: int = 256,
        samples: int = 0,
        near: float = 0.01,
        far: float = 100.0,
        smooth: bool = False,
    ) -> None:
        self.width, self.height, self.samples = int(width), int(height), int(samples)
        self.near, self.far, self.smooth = float(near), float(far), bool(smooth)
        self._ctx: Any = None
        self._pid: int | None = None
        self._fbos: OrderedDict[tuple[int, int], tuple[Any, Any]] = OrderedDict()
        self._progs: dict[bool, tuple[Any, Any, Any, Any]] = {}

    # ---- context and GL objects -------------------------------------------------------------------
    def __getstate__(self) -> dict:
        keys = ("width", "height", "samples", "near", "far", "smooth")
        return {k: self.__dict__[k] for k in keys}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    @property
    def ctx(self) -> Any:
        """The moderngl context, created on first access in the calling process."""
        if self._ctx is None:
            self._ctx, self._pid = create_context(), os.getpid()
        elif self._pid != os.getpid():
            raise RuntimeError(
                "MeshRenderer's GL context was created in another process (fork after first render); "
                "create the renderer lazily inside each worker process."
            )
        return self._ctx

    @property
    def gl_renderer(self) -> str:
        """GL_RENDERER string, e.g. 'llvmpipe (LLVM 15.0.6, 256 bits)'."""
        return self.ctx.info["GL_RENDERER"]

    def release(self) -> None:
        """Free all GL objects and the context (a later call creates a new one)."""
        if self._ctx is not None and self._pid == os.getpid():
            self._ctx.release()
        self._ctx, self._pid = None, None
        self._fbos.clear()
        self._progs.clear()

    def _framebuffers(self, w: int, h: int) -> tuple[Any, Any]:
        """(draw fbo, read fbo) of size w x h; the same object twice without MSAA."""
        key = (w, h)
        if key in self._fbos:
            self._fbos.move_to_end(key)
            return self._fbos[key]
        ctx = self.ctx

        def make(samples: int) -> Any:
            rgba = ctx.renderbuffer((w, h), 4, samples=samples)
            zcov = ctx.renderbuffer((w, h), 2, samples=samples, dtype="f4")
            return ctx.framebuffer([rgba, zcov], ctx.depth_renderbuffer((w, h), samples=samples))

        read = make(0)
        pair = (make(self.samples), read) if self.samples else (read, read)
        self._fbos[key] = pair
        if len(self._fbos) > _MAX_FRAMEBUFFERS:
            for fbo in set(self._fbos.popitem(last=False)[1]):
                for att in (*fbo.color_attachments, fbo.depth_attachment):
                    att.release()
                fbo.release()
        return pair

    def _program(self, smooth: bool) -> tuple[Any, Any, Any, Any]:
        """(program, vertex buffer, index buffer, vertex array) for one shading mode."""
        if smooth not in self._progs:
            ctx = self.ctx
            head = "#version 330\n" + ("#define SMOOTH\n" if smooth else "")
            prog = ctx.program(
                vertex_shader=_VERT.replace("#version 330\n", head, 1),
                fragment_shader=_FRAG.replace("#version 330\n", head, 1),
            )
            vbo, ibo = ctx.buffer(reserve=4), ctx.buffer(reserve=4)
            fmt = ("3f 3f 3f", "in_pos", "in_col", "in_nrm") if smooth else ("3f 3f", "in_pos", "in_col")
            vao = ctx.vertex_array(prog, [(vbo, *fmt)], index_buffer=ibo, index_element_size=4)
            self._progs[smooth] = (prog, vbo, ibo, vao)
        return self._progs[smooth]

    def projection(self, K: Any, width: int, height: int) -> np.ndarray:
        """(4, 4) float32 clip matrix taking OpenCV camera points (X, Y, Z, 1) to GL clip space.

        No y flip: image row v lands on framebuffer row v counted from the bottom, which is exactly
        the bottom-up order glReadPixels returns, so the read-back buffer is already top row first.
        Pixel centers: OpenCV integer u maps to GL window coordinate u + 0.5.
        """
        K = _np(K, np.float64)
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        n, f = self.near, self.far
        return np.array(
            [
                [2 * fx / width, K[0, 1] * 2 / width, 2 * (cx + 0.5) / width - 1, 0],
                [0, 2 * fy / height, 2 * (cy + 0.5) / height - 1, 0],
                [0, 0, (f + n) / (f - n), -2 * f * n / (f - n)],
                [0, 0, 1, 0],
            ],
            dtype=np.float32,
        )

    # ---- rendering --------------------------------------------------------------------------------
    def _draw(
        self,
        meshes: Sequence[Sequence[Any]],
        K: Any,
        width: int,
        height: int,
        light_dir: Any,
        ambient: float,
        smooth: bool | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rasterize meshes -> (rgb (H, W, 3) uint8 premultiplied by coverage, zcov (H, W, 2) float32)."""
        smooth = self.smooth if smooth is None else smooth
        pos, col, nrm, idx, offset = [], [], [], [], 0
        for mesh in meshes:
            v, f = _np(mesh[0]).reshape(-1, 3), _np(mesh[1], np.int32).reshape(-1, 3)
            pos.append(v)
            col.append(_colors(mesh[2] if len(mesh) > 2 else (0.7, 0.7, 0.7), len(v)))
            if smooth:
                nrm.append(vertex_normals(v, f))
            idx.append(f + offset)
            offset += len(v)
        prog, vbo, ibo, vao = self._program(smooth)
        draw, read = self._framebuffers(width, height)
        draw.use()
        draw.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        n_idx = sum(f.size for f in idx)
        if n_idx:
            data = np.concatenate([np.concatenate(a) for a in (pos, col, nrm) if a], axis=1)
            faces = np.concatenate(idx)
            for buf, arr in ((vbo, data), (ibo, faces)):
                if buf.size < arr.nbytes:
                    buf.orphan(arr.nbytes)
                buf.write(arr)
            L = np.asarray((0.0, 0.3, 1.0) if light_dir is None else _np(light_dir), np.float64)
            prog["to_light"].value = tuple(-L / np.linalg.norm(L))  # light_dir is the direction light travels
            prog["ambient"].value = float(ambient)
            prog["P"].write(self.projection(K, width, height).T.copy())  # GLSL matrices are column-major
            self.ctx.enable_only(self.ctx.DEPTH_TEST)
            vao.render(vertices=n_idx)
        if read is not draw:
            self.ctx.copy_framebuffer(read, draw)
        rgb = np.frombuffer(read.read(components=3, attachment=0), np.uint8)
        zcov = np.frombuffer(read.read(components=2, attachment=1, dtype="f4"), np.float32)
        return rgb.reshape(height, width, 3), zcov.reshape(height, width, 2)

    def render_meshes(
        self,
        meshes: Sequence[Sequence[Any]],
        K: Any,
        light_dir: Any = None,
        ambient: float = 0.35,
        background: np.ndarray | None = None,
        smooth: bool | None = None,
    ) -> RenderResult:
        """Render several meshes (e.g. a body and its occluders) into one image.

        Args:
            meshes: sequence of ``(vertices (V, 3), faces (F, 3))`` or ``(vertices, faces, color)``; color
                is (3,) or per-vertex (V, 3), floats in [0, 1] or uint8; default light grey.
            K: (3, 3) intrinsics in pixels, for this renderer's width x height.
            light_dir: (3,) direction the light travels, camera frame; default ≈ +z (a headlight from
                slightly above).
            ambient: shade of surfaces facing away from the light, in [0, 1].
            background: optional (H, W, 3) uint8 image shown where no mesh is.
            smooth: override the renderer's shading mode for this call.
        Returns:
            RenderResult with image (H, W, 3) uint8, mask (H, W) bool, depth (H, W) float32.
        """
        h, w = self.height, self.width
        rgb, zcov = self._draw(meshes, K, w, h, light_dir, ambient, smooth)
        cov = zcov[..., 1]
        mask = cov > 0.5
        depth = np.where(cov > 0, zcov[..., 0] / np.maximum(cov, 1e-12), 0).astype(np.float32)
        if background is None:
            image = rgb.copy()
        else:
            bg = np.asarray(background)
            if bg.shape != (h, w, 3) or bg.dtype != np.uint8:
                raise ValueError(f"background must be a ({h}, {w}, 3) uint8 image, got {bg.shape} {bg.dtype}")
            if self.samples:  # premultiplied colour over background, antialiased edges
                image = (rgb + (1 - cov[..., None]) * bg + 0.5).clip(0, 255).astype(np.uint8)
            else:
                image = np.where(mask[..., None], rgb, bg)
        return RenderResult(image, mask, depth)

    def render(
        self,
        vertices: Any,
        faces: Any,
        K: Any,
        color: Any = (0.7, 0.7, 0.7),
        light_dir: Any = None,
        ambient: float = 0.35,
        background: np.ndarray | None = None,
        smooth: bool | None = None,
    ) -> RenderResult:
        """Render one mesh: vertices (V, 3) float in the OpenCV camera frame (meters), faces (F, 3) int,
        K (3, 3), color (3,) or (V, 3). See :meth:`render_meshes` for the other arguments."""
        return self.render_meshes([(vertices, faces, color)], K, light_dir, ambient, background, smooth)

    def render_batch(
        self,
        vertices: Any,
        faces: Any,
        K: Any,
        color: Any = (0.7, 0.7, 0.7),
        backgrounds: Sequence[np.ndarray | None] | None = None,
        **kwargs: Any,
    ) -> list[RenderResult]:
        """Render B frames of one topology: vertices (B, V, 3), faces (F, 3), K (3, 3) or (B, 3, 3),
        color (3,), (V, 3) or (B, V, 3), backgrounds a length-B sequence. Returns B results."""
        verts = _np(vertices)
        B = len(verts)
        Ks = _np(K, np.float64)
        Ks = np.broadcast_to(Ks, (B, 3, 3))
        cols = _np(color, None)
        per_frame = cols.ndim == 3
        bgs = backgrounds if backgrounds is not None else [None] * B
        return [
            self.render(verts[b], faces, Ks[b], cols[b] if per_frame else cols, background=bgs[b], **kwargs)
            for b in range(B)
        ]

    def overlay(
        self,
        image: np.ndarray,
        vertices: Any,
        faces: Any,
        K: Any,
        color: Any = (0.55, 0.75, 1.0),
        alpha: float = 0.6,
        light_dir: Any = None,
        ambient: float = 0.35,
        smooth: bool | None = True,
        extra_meshes: Sequence[Sequence[Any]] = (),
    ) -> np.ndarray:
        """Blend a shaded mesh onto an image of any size (for reports).

        Args:
            image: (H, W, 3) or (H, W) uint8; K must be the intrinsics of this image.
            vertices, faces, color: the mesh, as in :meth:`render`.
            alpha: opacity of the mesh in [0, 1].
            extra_meshes: further ``(vertices, faces[, color])`` drawn in the same pass.
        Returns:
            (H, W, 3) uint8, a new array.
        """
        img = np.asarray(image)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        h, w = img.shape[:2]
        meshes = [(vertices, faces, color), *extra_meshes]
        rgb, zcov = self._draw(meshes, K, w, h, light_dir, ambient, smooth)
        a = alpha * zcov[..., 1:2]
        out = img[..., :3].astype(np.float32) * (1 - a) + alpha * rgb.astype(np.float32)
        return (out + 0.5).clip(0, 255).astype(np.uint8)

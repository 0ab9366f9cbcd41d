"""From a photo to aligned faces and back: detection and 68 landmarks (dlib), the FFHQ alignment recipe,
and paste-back of rendered faces into the photo.

    photo -> align_faces -> [AlignedFace(image, quad, landmarks, score, box)] -> stack_faces -> a method
          -> Inversion.render -> paste_back(photo, rendered, quads) -> the photo with the new faces

Modules: ``photo`` (reading a photo in any form), ``detect`` (dlib: detector, landmark model, the
plausibility test), ``align`` (the recipe, ``AlignedFace``), ``paste`` (paste-back). dlib is imported on
first use only; alignment from given landmarks and paste-back do not need it.
"""

from sg2_core.faces.align import (
    LANDMARK_LAYOUTS,
    AlignedFace,
    align,
    align_faces,
    eyes_and_mouth,
    face_quad,
    quad_matrix,
    stack_faces,
)
from sg2_core.faces.detect import (
    LANDMARKS_ENV,
    MAX_DRIFT,
    DetectedFace,
    LandmarkModelError,
    NoFaceError,
    detect_faces,
    landmarks_model_path,
)
from sg2_core.faces.paste import paste_back
from sg2_core.faces.photo import read_photo

__all__ = [
    "LANDMARKS_ENV",
    "LANDMARK_LAYOUTS",
    "MAX_DRIFT",
    "AlignedFace",
    "DetectedFace",
    "LandmarkModelError",
    "NoFaceError",
    "align",
    "align_faces",
    "detect_faces",
    "eyes_and_mouth",
    "face_quad",
    "landmarks_model_path",
    "paste_back",
    "quad_matrix",
    "read_photo",
    "stack_faces",
]

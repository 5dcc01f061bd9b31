#!/usr/bin/env python3
"""webcam.py — StreamDiffusion on a live camera from Python with sdstream (no PyTorch).

With OpenCV (Debian: python3-opencv) it reads the camera and shows input and output side by side
(q quits); without it, or with --images DIR, it streams the images of a folder (name order) and
writes the outputs to --output DIR. The library's threaded runner (Stream.run) converts input,
denoises and decodes on their own threads; a live camera drops stale frames instead of queueing.

  python3 webcam.py --model MODEL --taesd TAESD --prompt "a watercolor portrait" [--camera 0]
  python3 webcam.py --model MODEL --taesd TAESD --images frames/ --output out/
"""
import argparse
import sys
from pathlib import Path


import sdstream

try:
    import cv2
except ImportError:
    cv2 = None


def camera_frames(index, size):
    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        sys.exit(f"webcam.py: cannot open camera {index}")
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                return
            yield square_crop(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size)
    finally:
        capture.release()


def square_crop(rgb, size):
    """Centre crop to a square, then resize to size x size (OpenCV)."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return cv2.resize(rgb[top:top + side, left:left + side], (size, size), interpolation=cv2.INTER_AREA)


def folder_frames(folder):
    from PIL import Image
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not paths:
        sys.exit(f"webcam.py: no .png/.jpg images in {folder}")
    for path in paths:
        yield Image.open(path)  # the binding resizes PIL images to the stream's size


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--taesd")
    ap.add_argument("--lora", action="append", default=[], help="PATH[:SCALE], repeatable (LCM-LoRA)")
    ap.add_argument("--prompt", default="a watercolor portrait, soft light")
    ap.add_argument("--negative-prompt", default="")
    ap.add_argument("--t-index-list", default="32,45")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--camera", type=int, default=0)
    ap.add_argument("--images", help="an image folder instead of the camera")
    ap.add_argument("--output", default="webcam-out", help="output folder (image-folder mode)")
    args = ap.parse_args()

    stream = sdstream.StreamDiffusion(
        model=args.model, taesd=args.taesd, lora=args.lora or None,
        t_index_list=[int(t) for t in args.t_index_list.split(",")],
        width=args.size, height=args.size)
    stream.prepare(args.prompt, args.negative_prompt)

    if cv2 is not None and args.images is None:
        def show(frame):
            cv2.imshow("sdstream", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            if cv2.waitKey(1) & 0xFF == ord("q"):
                stream.request_stop()
        stats = stream.run(camera_frames(args.camera, args.size), show, live_source=True)
        cv2.destroyAllWindows()
    else:
        if args.images is None:
            sys.exit("webcam.py: OpenCV (python3-opencv) is not installed: pass --images DIR")
        from PIL import Image
        out_dir = Path(args.output)
        out_dir.mkdir(parents=True, exist_ok=True)
        count = [0]

        def save(frame):
            Image.fromarray(frame).save(out_dir / f"frame_{count[0]:06d}.png")
            count[0] += 1
        stats = stream.run(folder_frames(args.images), save)
        print(f"webcam.py: wrote {count[0]} frames to {out_dir}")
    print(f"{stats['frames_out']} frames, {stats['fps']:.1f} fps, denoise {stats['denoise_ms']:.1f} ms/frame",
          file=sys.stderr)
    stream.close()


if __name__ == "__main__":
    main()

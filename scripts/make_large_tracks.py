"""Write a large synthetic COCO-results track file for the large-input benchmark in
BENCHMARKS.md: 100 tracks x 10,000 frames made from the bundled example track (jittered and
shifted copies), 30 fps.

    python scripts/make_large_tracks.py /tmp/big.json
"""
import sys
import numpy as np, time
from lifting.io.readers import read_detections
from lifting.track import track
from lifting.io.tracks import write_coco_tracks, Track, TrackSet
src = track(read_detections('lifting/assets/example_track.json', 'coco'))
tr = src.tracks[0]
rng = np.random.default_rng(0)
tracks = []
for k in range(100):
    idx = np.arange(10000) % len(tr.frame_ids)
    kp = tr.keypoints[idx].copy()
    kp[..., :2] += rng.normal(0, 1.0, kp[..., :2].shape).astype(np.float32) + rng.uniform(-200, 200, 2).astype(np.float32)
    tracks.append(Track(k, np.arange(10000), kp))
ts = TrackSet(tracks=tracks, fps=30.0, keypoint_format='coco17', image_size=(1920, 1080), source='synthetic')
t0=time.time(); write_coco_tracks(ts, sys.argv[1] if len(sys.argv) > 1 else 'big_tracks.json'); print('written', time.time()-t0)

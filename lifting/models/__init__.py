"""The models: the teacher lifter (:mod:`.teacher`), the SMPL student (:mod:`.student`), the
critics (:mod:`.discriminators`), checkpoints (:mod:`.checkpoint`) and loading a model for
lifting (:mod:`.lifters`)."""

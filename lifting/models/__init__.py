"""The models, each built from its config dataclass: the teacher lifter (:mod:`.teacher`,
``TeacherConfig``), the SMPL student (:mod:`.student`, ``StudentConfig``), the critics
(:mod:`.discriminators`); what they share (:mod:`.base`: ``ModelArgs``, the common model
interface, the checkpoint errors); checkpoints, the one place a checkpoint is made, read,
identified, rebuilt and exported (:mod:`.checkpoint`); and loading a lifter for ``lift``
(:mod:`.lifters`)."""

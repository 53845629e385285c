-- What a device's agent reports about itself and its owner's agent.yaml
-- (PUT /api/v1/device/info), each time it starts: the device's word, kept
-- for engineers to read and so that the server can refuse up front a
-- session whose command the agent could not take. None of it is
-- authority: the device enforces its owner's config itself.
--   agent_version       the agent's version ('' never reported);
--   agent_capabilities  JSON list of what it understands of the open
--                       command (control.Capabilities);
--   agent_consent       the owner's consent mode: manual, approve, auto;
--   agent_allow_ports   JSON list of the owner's allow_ports;
--   agent_reported_at   when (unix ms; 0: never, an agent that predates
--                       the report).
ALTER TABLE devices ADD COLUMN agent_version TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN agent_capabilities TEXT NOT NULL DEFAULT '[]';
ALTER TABLE devices ADD COLUMN agent_consent TEXT NOT NULL DEFAULT '' CHECK (agent_consent IN ('', 'manual', 'approve', 'auto'));
ALTER TABLE devices ADD COLUMN agent_allow_ports TEXT NOT NULL DEFAULT '[]';
ALTER TABLE devices ADD COLUMN agent_reported_at BIGINT NOT NULL DEFAULT 0;

"""CNT minimal voice agent: a LiveKit Agents worker.

Started with `python agent.py start`; reads LIVEKIT_URL, LIVEKIT_API_KEY and
LIVEKIT_API_SECRET from the environment. The worker's own health server answers on
port 8081 (`GET /`, and `GET /worker` with its state). When a room dispatches a job, the
agent joins it and greets; production's agent adds speech in place of the greeting.
"""

from __future__ import annotations

import logging

from livekit import rtc
from livekit.agents import JobContext, WorkerOptions, cli

log = logging.getLogger("cnt.voice_agent")


async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()
    log.info("joined room %s", ctx.room.name)
    await ctx.room.local_participant.publish_data(b"cnt-voice-agent: hello", reliable=True)

    @ctx.room.on("participant_connected")
    def greet(participant: rtc.RemoteParticipant) -> None:
        log.info("participant %s joined %s", participant.identity, ctx.room.name)


if __name__ == "__main__":
    cli.run_app(WorkerOptions(entrypoint_fnc=entrypoint, port=8081, host="0.0.0.0"))



async def test_a_vm_another_job_is_busy_with_is_skipped_with_the_job_named() -> None:
    gate = Gate()
    app = ActionsTestApp(
        runner=runner_with({"restart": gate.action("restart"), "stop": instant("stop")})
    )
    async with app.run_test() as pilot:
        await ready(pilot)
        busy = app.actions.submit("restart", "web")
        assert busy is not None
        await wait_until(pilot, gate.started.is_set, what="the restart of web")
        for name in ("web", "db"):
            app.select(name)
            await pilot.press("space")
        await pilot.press("T")
        screen = app.screen
        assert isinstance(screen, ConfirmScreen)
        assert screen.title_text == "Stop 1 marked VM? (1 skipped)"
        assert f"web  skipped: busy: restart web (job {busy.id})" in screen.body.plain
        await pilot.press("escape")
        gate.release()

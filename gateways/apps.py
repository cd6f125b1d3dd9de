from django.apps import AppConfig


class GatewaysConfig(AppConfig):
    name = "gateways"

    def ready(self) -> None:
        from aivax.signals import demo_seeded

        def _seed(sender: object, **kwargs: object) -> str | None:
            from gateways.demo import seed_demo_gateway

            return seed_demo_gateway(**kwargs)  # type: ignore[arg-type]

        demo_seeded.connect(_seed, dispatch_uid="gateways.demo")

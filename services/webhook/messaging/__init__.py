"""RabbitMQ side of the webhook service: topology, the subscription consumer, the dispatcher, timers."""

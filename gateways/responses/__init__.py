"""The OpenAI Responses API: a second protocol face on the one chat service (gateways/chat.py).

protocol.py translates (request -> chat request, chat completion -> Response, chat chunks -> Responses events);
adapter.py is the one place that calls the chat service; service.py runs a request end to end and keeps stored
responses (models.py, selectors.py, tasks.py) so that `previous_response_id` continues a conversation.
"""

-- A receiver's response body is whatever bytes it sent (a NUL, invalid UTF-8): kept as bytes, so
-- recording an attempt never fails on its content. The API shows it decoded as UTF-8, replacing
-- what does not decode.
ALTER TABLE delivery_attempts ALTER COLUMN response_body TYPE bytea USING convert_to(response_body, 'UTF8');

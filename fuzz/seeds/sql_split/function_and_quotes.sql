/* header /* nested */ comment */
CREATE FUNCTION touch() RETURNS trigger AS $body$
BEGIN
  NEW.updated_at := now(); -- a ; inside
  RETURN NEW;
END;
$body$ LANGUAGE plpgsql;
INSERT INTO notes (text) VALUES ('it''s; fine'), (E'tab\t\'quoted\'; here'), ($$dollar; quoted$$);
SELECT "odd;name" FROM t;

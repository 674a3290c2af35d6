#!/bin/sh
# answers every customer message; "agent please" hands the thread back to the admins' queue
while IFS= read -r line; do
  case "$line" in
  *'"type":"message"'*'"role":"customer"'*)
    t=$(printf '%s\n' "$line" | sed -n 's/.*"thread":\([0-9]*\).*/\1/p')
    case "$line" in
    *'"body":"agent please"'*) printf '{"type":"handback","thread":%s,"to":"admin"}\n' "$t" ;;
    *) printf '{"type":"reply","thread":%s,"body":"robo: got it"}\n' "$t" ;;
    esac ;;
  esac
done

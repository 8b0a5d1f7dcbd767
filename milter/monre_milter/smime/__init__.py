"""S/MIME (art. 9.2): CMS signature verification (cms), trust anchors and certificate checks (store), and the
analyser that finds, verifies and unwraps signed parts of a message (analyser). The engine rule is
engine/rules/smime.py; it only reads what the analyser leaves in the facts."""

-- Objects from here on belong to the owner role, like everything migration 0009 handed to it.
SET LOCAL ROLE __owner_role__;

// Run once after the whole suite (see the Makefile): removes the empty parent
// cgroups that tests leave, as runc leaves its parents. Not per test file:
// files run concurrently and one could remove a parent another is using.
import { removeTestCgroupParents } from './bundle';
import { removeSharedCniChains } from './engine';

removeTestCgroupParents();
// the CNI port chains the engine tests' containers needed, if this run made them and nobody uses them now
removeSharedCniChains();
